"""辖区社会资源: the social_resources registry behind the 辖区社会资源台账

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 05:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PATH = sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql')


def upgrade():
    op.create_table('social_resources',
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('path', PATH, nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('address', sa.String(length=100), nullable=False),
    sa.Column('contact_name', sa.String(length=40), nullable=False),
    sa.Column('contact_phone', sa.String(length=20), nullable=False),
    sa.Column('services', sa.String(length=500), nullable=False),
    sa.Column('opening', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('place','team','business','station','other')",
                       name=op.f('ck_social_resources_kind')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                            name=op.f('fk_social_resources_created_by_id_users')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'],
                            name=op.f('fk_social_resources_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_social_resources'))
    )
    with op.batch_alter_table('social_resources', schema=None) as batch_op:
        batch_op.create_index('ix_social_resources_path', ['path'], unique=False)


def downgrade():
    with op.batch_alter_table('social_resources', schema=None) as batch_op:
        batch_op.drop_index('ix_social_resources_path')
    op.drop_table('social_resources')
