"""notices with read receipts; call-outs (倡议) with sign-ups

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 05:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PATH = sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql')


def upgrade():
    op.create_table('notices',
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('path', PATH, nullable=False),
    sa.Column('title', sa.String(length=60), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
    sa.Column('withdrawn_by_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_notices_published_by_id_users')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_notices_region_id_regions')),
    sa.ForeignKeyConstraint(['withdrawn_by_id'], ['users.id'], name=op.f('fk_notices_withdrawn_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    op.create_index('ix_notices_path', 'notices', ['path'], unique=False)
    op.create_table('notice_recipients',
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('path', PATH, nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_recipients_notice_id_notices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notice_recipients_user_id_users')),
    sa.PrimaryKeyConstraint('notice_id', 'user_id', name=op.f('pk_notice_recipients'))
    )
    op.create_index('ix_notice_recipients_user_id_read_at', 'notice_recipients', ['user_id', 'read_at'], unique=False)
    op.create_table('callouts',
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('path', PATH, nullable=False),
    sa.Column('title', sa.String(length=40), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('place', sa.String(length=60), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=True),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('logged_at', sa.DateTime(), nullable=True),
    sa.Column('logged_households', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.CheckConstraint('cap IS NULL OR cap BETWEEN 1 AND 500', name=op.f('ck_callouts_cap')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_callouts_cancelled_by_id_users')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_callouts_created_by_id_users')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_callouts_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callouts')),
    sa.UniqueConstraint('token', name=op.f('uq_callouts_token'))
    )
    op.create_index('ix_callouts_path', 'callouts', ['path'], unique=False)
    op.create_index('ix_callouts_created_by_id', 'callouts', ['created_by_id'], unique=False)
    op.create_table('callout_signups',
    sa.Column('callout_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('phone', sa.String(length=11), nullable=True),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.CheckConstraint('people BETWEEN 1 AND 10', name=op.f('ck_callout_signups_people')),
    sa.ForeignKeyConstraint(['callout_id'], ['callouts.id'], name=op.f('fk_callout_signups_callout_id_callouts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callout_signups')),
    sa.UniqueConstraint('callout_id', 'phone', name='uq_callout_signups_callout_phone')
    )


def downgrade():
    op.drop_table('callout_signups')
    op.drop_index('ix_callouts_created_by_id', table_name='callouts')
    op.drop_index('ix_callouts_path', table_name='callouts')
    op.drop_table('callouts')
    op.drop_index('ix_notice_recipients_user_id_read_at', table_name='notice_recipients')
    op.drop_table('notice_recipients')
    op.drop_index('ix_notices_path', table_name='notices')
    op.drop_table('notices')
