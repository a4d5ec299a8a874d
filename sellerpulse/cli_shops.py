"""`sellerpulse shops ...`: connect, list, fix and remove shops, and who they reach.

Every shop has an owner (a person with a Telegram id) from the moment it exists: `--owner`, or
SELLERPULSE_DEFAULT_OWNER. A WB token is checked with one cheap call before it is stored (a
timeout or 5xx means "could not verify", never "invalid"); a token already stored, or a name the
owner already uses, is refused. Arguments are checked before anything is asked of a marketplace.
"""

from __future__ import annotations

import argparse
import asyncio

from pydantic import SecretStr
from sqlalchemy.orm import Session

from sellerpulse.cli_support import (
    add_json_flag,
    checked_engine,
    confirm,
    ensure_person,
    read_secret,
    resolve_shop,
    telegram_id,
)
from sellerpulse.errors import Failure, UserError
from sellerpulse.settings import get_settings
from storage import people
from storage.models import Marketplace, Person, Role, Shop, ShopStatus
from storage.shops import (
    CannotResume,
    add_member,
    create_shop,
    is_paused,
    member_person_ids,
    pause_shop,
    replace_credentials,
    resume_shop,
    same_name,
    set_status,
    shop_with_account,
    shop_with_wb_token,
)

PAUSED_REASON = "paused by the operator"


def _owner_id(args: argparse.Namespace) -> int:
    tg_id: int | None = args.owner or get_settings().sellerpulse_default_owner
    if tg_id is None:
        raise UserError(
            "every shop needs an owner who gets its notifications: "
            "give --owner TELEGRAM_ID or set SELLERPULSE_DEFAULT_OWNER"
        )
    return tg_id


def _known_owner(session: Session, tg_id: int) -> list[int]:
    """The owner's person id, when registered (for the checks made before anything changes)."""
    person = people.get_person(session, telegram_id=tg_id)
    return [] if person is None else [person.id]


def _owner(session: Session, tg_id: int) -> Person:
    person, created = ensure_person(session, tg_id)
    if created:
        print(f"registered person {tg_id} (they get notifications once they have started the bot)")
    return person


def _check_name(session: Session, name: str, person_ids: list[int], *, exclude: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise UserError("a shop's name cannot be empty")
    if len(name) > 128:
        raise UserError("a shop's name is at most 128 characters")
    taken = same_name(session, name=name, person_ids=person_ids, exclude_shop_id=exclude)
    if taken is not None:
        raise UserError(f"a shop named {taken.name!r} already belongs to this owner (id {taken.id}): pick another name")
    return name


def _verify_wb(token: str, *, skip: bool) -> str | None:
    """The seller id behind a token WB accepted; None when not checked. Failure when refused or unknown."""
    if skip:
        return None
    from api.services.wb import ConnectorWbVerifier
    from connectors import errors

    try:
        account = asyncio.run(ConnectorWbVerifier(get_settings()).verify(SecretStr(token)))
    except errors.CredentialsRejected:
        raise Failure("WB rejected this token (401): check it, and that it has the Feedbacks category") from None
    except errors.ConnectorError as exc:
        # A timeout, a 5xx or a 429 says nothing about the token.
        raise Failure(
            f"could not verify the token with WB ({type(exc).__name__}: {exc}): nothing was stored; "
            "try again, or add --no-verify to store it unchecked"
        ) from None
    return account.seller_id


def _refuse_known_token(session: Session, token: str, account: str | None, *, exclude: int | None = None) -> None:
    same = shop_with_wb_token(session, token=token)
    if same is not None and same.id != exclude:
        raise UserError(f"this token is already shop {same.name!r} (id {same.id}): nothing was added")
    seller = shop_with_account(session, marketplace=Marketplace.wb.value, account=account)
    if seller is not None and seller.id != exclude:
        raise UserError(
            f"this WB seller is already shop {seller.name!r} (id {seller.id}): "
            f"to give it this token, `sellerpulse shops set-token {seller.id}`"
        )


def _add_wb(args: argparse.Namespace) -> int:
    owner_tg = _owner_id(args)
    token = read_secret(args.token, env="WB_TOKEN", what="WB token")
    engine = checked_engine()
    with Session(engine) as session:  # refuse what can be refused before calling WB
        name = _check_name(session, args.name, _known_owner(session, owner_tg))
        _refuse_known_token(session, token, None)
    account = _verify_wb(token, skip=args.no_verify)
    with Session(engine) as session, session.begin():
        owner = _owner(session, owner_tg)
        _check_name(session, name, [owner.id])
        _refuse_known_token(session, token, account)
        shop = create_shop(
            session,
            marketplace=Marketplace.wb.value,
            name=name,
            credentials={"token": token},
            account=account,
            owner_id=owner.id,
        )
        shop_id = shop.id
    checked = "stored unchecked" if args.no_verify else "token accepted by WB"
    print(f"WB shop {name!r} added (id {shop_id}, owner {owner_tg}, {checked}); its first sync backs up its history")
    return 0


def _allegro_login(*, name: str, owner_telegram_id: int | None, shop_id: int | None) -> int:
    from flows.connect import LoginRefused, begin_login, complete_login, login_instructions
    from tasks.clients import make_clients

    engine = checked_engine()

    async def run() -> int:
        async with make_clients() as clients:
            device = await begin_login(clients)
            print(login_instructions(device), flush=True)
            print("waiting for approval (Ctrl-C gives up)...", flush=True)
            return await complete_login(
                engine, clients, device, name=name, owner_telegram_id=owner_telegram_id, shop_id=shop_id
            )

    try:
        return asyncio.run(run())
    except LoginRefused as exc:
        raise Failure(str(exc)) from None


def _connect_allegro(args: argparse.Namespace) -> int:
    if args.reconnect is not None:  # the older spelling of `shops reconnect ID`
        args.shop = str(args.reconnect)
        return _reconnect(args)
    owner_tg = _owner_id(args)
    with Session(checked_engine()) as session, session.begin():
        name = _check_name(session, args.name, _known_owner(session, owner_tg))
        _owner(session, owner_tg)  # registered before the login, which needs them
    shop_id = _allegro_login(name=name, owner_telegram_id=owner_tg, shop_id=None)
    with Session(checked_engine()) as session:
        shop = session.get(Shop, shop_id)
        assert shop is not None
        if shop.name != name:
            print(f"this Allegro account was already connected as shop {shop.name!r}: its login was renewed")
    print(f"Allegro shop {name!r} connected (id {shop_id}, owner {owner_tg})")
    return 0


def _reconnect(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session:
        shop = resolve_shop(session, args.shop)
        if shop.marketplace != Marketplace.allegro.value:
            raise UserError(f"shop {shop.name!r} is a WB shop: give it a new token with `sellerpulse shops set-token`")
        shop_id, name = shop.id, shop.name
    _allegro_login(name=name, owner_telegram_id=None, shop_id=shop_id)
    with Session(checked_engine()) as session:
        status = session.get(Shop, shop_id).status  # type: ignore[union-attr]
    print(f"Allegro shop {name!r} (id {shop_id}) reconnected; status {status}")
    return 0


def _set_token(args: argparse.Namespace) -> int:
    token = read_secret(args.token, env="WB_TOKEN", what="WB token")
    engine = checked_engine()
    with Session(engine) as session:
        shop = resolve_shop(session, args.shop)
        if shop.marketplace != Marketplace.wb.value:
            raise UserError(f"shop {shop.name!r} is an Allegro shop: log in again with `sellerpulse shops reconnect`")
        shop_id, name = shop.id, shop.name
        _refuse_known_token(session, token, None, exclude=shop_id)
    account = _verify_wb(token, skip=args.no_verify)
    with Session(engine) as session, session.begin():
        shop = session.get(Shop, shop_id)
        assert shop is not None
        _refuse_known_token(session, token, account, exclude=shop_id)
        paused = is_paused(shop)
        replace_credentials(session, shop_id=shop_id, credentials={"token": token})
        session.refresh(shop)
        if not paused:
            set_status(session, shop=shop, status=ShopStatus.active, reason=None)
        status = shop.status
    tail = "still paused: `sellerpulse shops resume` starts it" if paused else f"status {status}"
    print(f"WB shop {name!r} (id {shop_id}) has its new token; {tail}")
    return 0


def _rename(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session, session.begin():
        shop = resolve_shop(session, args.shop)
        new = _check_name(session, args.new_name, member_person_ids(session, shop_id=shop.id), exclude=shop.id)
        old = shop.name
        people.rename_shop(session, shop=shop, name=new)
        print(f"shop {shop.id} renamed: {old!r} -> {new!r}")
    return 0


def _pause(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session, session.begin():
        shop = resolve_shop(session, args.shop)
        if shop.credentials is None:
            raise UserError(f"shop {shop.name!r} was removed: nothing to pause")
        reason = f"{PAUSED_REASON}: {args.reason}" if args.reason else PAUSED_REASON
        changed = pause_shop(session, shop=shop, reason=reason)
        print(f"shop {shop.name!r} (id {shop.id}) {'paused' if changed else 'was already paused'}: it is not synced")
    return 0


def _resume(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session, session.begin():
        shop = resolve_shop(session, args.shop)
        try:
            changed = resume_shop(session, shop=shop)
        except CannotResume as exc:
            raise UserError(f"shop {shop.name!r} cannot resume: {exc}") from None
        print(f"shop {shop.name!r} (id {shop.id}) {'resumed' if changed else 'was already active'}: synced on schedule")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session, session.begin():
        shop = resolve_shop(session, args.shop)
        shop_id, name = shop.id, shop.name
        if args.purge:
            confirm(
                f"This deletes shop {name!r} (id {shop_id}) and ALL its orders, reviews, stock and notifications.",
                expected=name,
                yes=args.yes,
            )
        people.remove_shop(session, shop=shop, purge=args.purge, reason="removed by the operator")
    if args.purge:
        print(f"shop {name!r} (id {shop_id}) and all its data deleted")
    else:
        print(
            f"shop {name!r} (id {shop_id}) removed: not synced, token dropped, its data kept "
            "(`shops remove --purge` deletes it; `shops set-token`/`reconnect` then `resume` bring it back)"
        )
    return 0


def _member_add(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session, session.begin():
        shop = resolve_shop(session, args.shop)
        person, created = ensure_person(session, args.telegram_id)
        role = Role(args.role)
        add_member(session, shop_id=shop.id, person_id=person.id, role=role)
        if created:
            print(f"registered person {args.telegram_id} (they get notifications once they have started the bot)")
        print(f"{args.telegram_id} is now {role.value} of shop {shop.name!r} (id {shop.id})")
    return 0


def _member_remove(args: argparse.Namespace) -> int:
    with Session(checked_engine()) as session, session.begin():
        shop = resolve_shop(session, args.shop)
        person = people.get_person(session, telegram_id=args.telegram_id)
        if person is None:
            raise UserError(f"nobody with Telegram id {args.telegram_id} is registered")
        try:
            removed = people.remove_member(session, shop=shop, person_id=person.id)
        except people.LastMember as exc:
            raise UserError(f"{args.telegram_id} stays on shop {shop.name!r}: {exc}") from None
        if not removed:
            raise UserError(f"{args.telegram_id} is not a member of shop {shop.name!r}")
        print(f"{args.telegram_id} removed from shop {shop.name!r} (id {shop.id})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from sellerpulse.cli_status import show_shops

    return show_shops(checked_engine(), as_json=args.json)


def _shop_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shop", help="shop id or name")


def _token_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="the token; '-' reads it from stdin; default: $WB_TOKEN")
    parser.add_argument(
        "--no-verify", action="store_true", help="store the token without checking it with WB (WB unreachable)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    shops = sub.add_parser("shops", help="connect, list, fix and remove shops; who they notify")
    actions = shops.add_subparsers(dest="shops_command", metavar="ACTION", required=True)
    owner_help = "Telegram id of the shop's owner (default: SELLERPULSE_DEFAULT_OWNER)"

    wb = actions.add_parser("add-wb", help="add a Wildberries shop by its API token (checked with WB)")
    wb.add_argument("--name", required=True)
    wb.add_argument("--owner", type=telegram_id, help=owner_help)
    _token_args(wb)
    wb.set_defaults(func=_add_wb)

    al = actions.add_parser("connect-allegro", help="connect an Allegro account (device flow: shows a code)")
    al.add_argument("--name", required=True)
    al.add_argument("--owner", type=telegram_id, help=owner_help)
    al.add_argument("--reconnect", type=int, metavar="SHOP_ID", help=argparse.SUPPRESS)
    al.set_defaults(func=_connect_allegro)

    ls = actions.add_parser("list", help="every shop: status, last sync per stream, history, owners")
    add_json_flag(ls)
    ls.set_defaults(func=_list)

    st = actions.add_parser("set-token", help="give a WB shop a new token (checked with WB); re-activates it")
    _shop_arg(st)
    _token_args(st)
    st.set_defaults(func=_set_token)

    rc = actions.add_parser("reconnect", help="log an Allegro shop in again (device flow), keeping its data")
    _shop_arg(rc)
    rc.set_defaults(func=_reconnect)

    rn = actions.add_parser("rename", help="rename a shop")
    _shop_arg(rn)
    rn.add_argument("new_name")
    rn.set_defaults(func=_rename)

    pa = actions.add_parser("pause", help="stop syncing a shop, keeping its token and data")
    _shop_arg(pa)
    pa.add_argument("--reason", help="shown in `shops list`")
    pa.set_defaults(func=_pause)

    re = actions.add_parser("resume", help="sync a paused shop again")
    _shop_arg(re)
    re.set_defaults(func=_resume)

    rm = actions.add_parser("remove", help="stop syncing a shop and drop its token; --purge also deletes its data")
    _shop_arg(rm)
    rm.add_argument("--purge", action="store_true", help="delete every order, review... of the shop (asks first)")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(func=_remove)

    members = actions.add_parser("members", help="who a shop notifies: add or remove people")
    member_actions = members.add_subparsers(dest="members_command", metavar="ACTION", required=True)
    ma = member_actions.add_parser("add", help="share a shop with a person (registered if new)")
    _shop_arg(ma)
    ma.add_argument("telegram_id", type=telegram_id)
    ma.add_argument("--role", choices=[r.value for r in Role], default=Role.member.value)
    ma.set_defaults(func=_member_add)
    mr = member_actions.add_parser("remove", help="take a person off a shop (never its last one)")
    _shop_arg(mr)
    mr.add_argument("telegram_id", type=telegram_id)
    mr.set_defaults(func=_member_remove)
