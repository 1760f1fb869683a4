"""flask commands: init-db, seed demo, seed scale, create-user, requests tick."""

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db


def register(app):
    app.cli.add_command(init_db)
    app.cli.add_command(create_user_cmd)
    app.cli.add_command(seed)
    app.cli.add_command(requests_cli)


@click.command("init-db")
def init_db():
    """Create or upgrade the database schema (runs the Alembic migrations)."""
    from flask_migrate import upgrade

    upgrade()
    click.echo(f"数据库已就绪: {_safe_url()}")


def _safe_url() -> str:
    return db.engine.url.render_as_string(hide_password=True)


@click.command("create-user")
@click.option("--phone", required=True, help="11-digit mobile number (the login)")
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["neighbor_chief", "group_chief", "area_chief",
                                           "village_staff", "town_staff", "volunteer", "admin"]),
              default=None, help="also give the user a post")
@click.option("--region", "region_id", type=int, default=None,
              help="region id of the post (omit with --role admin for every town)")
def create_user_cmd(phone, name, password, role, region_id):
    """Create an account (and optionally a post) from the command line."""
    from portal.blueprints.auth.services import create_user
    from portal.blueprints.regions.models import Post, Region
    from portal.blueprints.regions.services import check_role_level
    from portal.errors import ServiceError

    try:
        region = None
        if region_id is not None:
            region = db.session.get(Region, region_id)
            if region is None:
                raise ServiceError(f"没有 id 为 {region_id} 的单位。")
        elif role and role != "admin":
            raise ServiceError("除 admin 外，岗位需要 --region。")
        if role and region is not None:
            check_role_level(role, region)
        user = create_user(None, phone, name, password, region.path if region else "/")
        if role:
            db.session.add(Post(user=user, region_id=region.id if region else None, role=role))
        db.session.commit()
    except ServiceError as e:
        db.session.rollback()
        raise click.ClickException(e.message) from e
    click.echo(f"已创建账号 {user.name} ({user.phone})" + (f"，岗位 {role}" if role else ""))


seed = AppGroup("seed", help="Load demo or benchmark data.")


@seed.command("demo")
@click.option("--force", is_flag=True, help="load even if the database already has data")
def seed_demo(force):
    """A town modelled on 江背镇: villages, areas, groups, ~60 邻长, ~700 households, logs since
    the previous quarter began, requests, 议事, and 积分 with last quarter's 履职评议."""
    from portal.blueprints.regions.models import Region
    from portal.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, load_demo

    if db.session.scalar(select(Region.id).limit(1)) is not None and not force:
        click.echo("数据库里已有数据，跳过演示数据（用 --force 强制再装一份）。")
        return
    from sqlalchemy.exc import IntegrityError

    from portal.blueprints.auth.models import User

    taken = db.session.scalar(select(User.phone).where(
        User.phone.in_([phone for phone, *_ in DEMO_ACCOUNTS])).limit(1))
    if taken is not None:
        raise click.ClickException("演示账号已存在（演示数据装过了），不能再装一份。")
    try:
        counts = load_demo()
    except IntegrityError as e:  # a generated account's number is already someone's login
        db.session.rollback()
        raise click.ClickException("演示数据与已有账号冲突，没有装入任何数据。") from e
    click.echo("演示数据已装入: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    click.echo(f"演示账号（密码都是 {DEMO_PASSWORD}）:")
    for phone, _name, label, where in DEMO_ACCOUNTS:
        click.echo(f"  {phone}  {label:<8} {where}")


@seed.command("scale")
@click.option("--households", type=int, required=True, help="how many households to generate")
@click.option("--towns", type=int, default=None, help="number of towns (default: 1 per 20,000)")
@click.option("--logs-per-household", type=float, default=12.5, show_default=True)
def seed_scale(households, towns, logs_per_household):
    """Bulk synthetic data for benchmarks (PostgreSQL uses COPY)."""
    from portal.seed_scale import load_scale

    summary = load_scale(households, towns=towns, logs_per_household=logs_per_household,
                         echo=click.echo)
    click.echo("规模数据已装入: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    current_app.logger.info("scale seed done")


requests_cli = AppGroup("requests", help="民情诉求 (点单, escalation).")


@requests_cli.command("tick")
def requests_tick():
    """Record the escalations whose deadlines have passed (run it from cron, e.g. every 5 min)."""
    from portal.blueprints.requests.services import tick

    written = tick()
    click.echo(f"已记录 {written} 次超时自动上报。")
