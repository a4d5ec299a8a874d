"""`sellerpulse shops ...` and `people ...` as an operator runs them: every shop reaches a person,
a WB token is checked and never stored twice, and a shop can be fixed (issue 13, points 1-3)."""

from __future__ import annotations

import json

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.models import Membership, Notification, Person, Shop
from storage.people import register_person
from storage.shops import create_shop, credentials_of
from tests.cli.conftest import one_line_error


def _shops(engine: Engine) -> list[Shop]:
    with Session(engine) as s:
        return list(s.scalars(select(Shop).order_by(Shop.id)))


def _roles(engine: Engine, shop_id: int) -> dict[int, str]:
    with Session(engine) as s:
        rows = s.execute(
            select(Person.telegram_id, Membership.role)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.shop_id == shop_id)
        )
        return dict(rows.tuples().all())


def test_every_cli_shop_has_an_owner_and_people_can_be_shared(cli, clean_engine: Engine, sandbox_on_a_port) -> None:
    token = sandbox_on_a_port.world.wb_token("wb1")

    refused = cli("shops", "add-wb", "--name", "Main", "--token", token)
    assert refused.code == 2 and "--owner" in one_line_error(refused)
    assert _shops(clean_engine) == []

    # The default owner, the token from stdin (never on the command line), checked with WB.
    added = cli(
        "shops",
        "add-wb",
        "--name",
        "Main",
        "--token",
        "-",
        stdin=token + "\n",
        env={"SELLERPULSE_DEFAULT_OWNER": "501"},
    )
    assert added.code == 0, added
    assert "token accepted by WB" in added.out and token not in added.out + added.err
    (shop,) = _shops(clean_engine)
    assert shop.account_key is not None  # the seller behind the token: a second shop of it is refused
    assert _roles(clean_engine, shop.id) == {501: "owner"}

    shared = cli("shops", "members", "add", "Main", "502")
    assert shared.code == 0, shared
    assert _roles(clean_engine, shop.id) == {501: "owner", 502: "member"}

    gone = cli("shops", "members", "remove", str(shop.id), "501")
    assert gone.code == 0, gone
    assert _roles(clean_engine, shop.id) == {502: "owner"}  # the shop still reaches someone

    last = cli("shops", "members", "remove", str(shop.id), "502")
    assert last.code == 2 and "only person" in one_line_error(last)
    assert _roles(clean_engine, shop.id) == {502: "owner"}

    listed = cli("people", "list", "--json")
    assert listed.code == 0, listed
    people = {p["telegram_id"]: p for p in json.loads(listed.out)}
    assert people[501]["shops"] == [] and people[502]["shops"] == [{"id": shop.id, "name": "Main", "role": "owner"}]


def test_wb_tokens_are_checked_and_never_stored_twice(cli, clean_engine: Engine, sandbox_on_a_port) -> None:
    world = sandbox_on_a_port.world
    token = world.wb_token("wb1")

    bad = cli("shops", "add-wb", "--name", "Main", "--owner", "7", "--token", "not-a-token")
    assert bad.code == 1 and "WB rejected this token" in one_line_error(bad)

    world.set_faults("wb-feedbacks:5xx=1")
    try:
        unknown = cli("shops", "add-wb", "--name", "Main", "--owner", "7", "--token", token)
    finally:
        world.set_faults(None)
    line = one_line_error(unknown)
    assert unknown.code == 1 and "could not verify" in line and "rejected" not in line
    assert _shops(clean_engine) == []  # neither was stored

    assert cli("shops", "add-wb", "--name", "Main", "--owner", "7", "--token", token).code == 0
    (main,) = _shops(clean_engine)

    again = cli("shops", "add-wb", "--name", "Other", "--owner", "8", "--token", token)
    assert again.code == 2 and f"already shop 'Main' (id {main.id})" in one_line_error(again)

    same_seller = cli("shops", "add-wb", "--name", "Other", "--owner", "8", "--token", world.mint_wb_token("wb1"))
    assert same_seller.code == 2 and f"set-token {main.id}" in one_line_error(same_seller)

    name_taken = cli("shops", "add-wb", "--name", " main ", "--owner", "7", "--token", "x.y.z", "--no-verify")
    assert name_taken.code == 2 and "already belongs to this owner" in one_line_error(name_taken)
    assert [s.name for s in _shops(clean_engine)] == ["Main"]


def test_a_shop_can_be_paused_fixed_renamed_and_removed(cli, clean_engine: Engine, sandbox_on_a_port) -> None:
    world = sandbox_on_a_port.world
    with Session(clean_engine) as s, s.begin():
        owner, _ = register_person(s, telegram_id=11, profile={})
        wb = create_shop(s, marketplace="wb", name="WB", credentials={"token": "old"}, owner_id=owner.id)
        pair = world.allegro_pair("allegro1")
        al = create_shop(
            s,
            marketplace="allegro",
            name="AL",
            credentials={"access_token": pair.access_token, "refresh_token": pair.refresh_token},
            owner_id=owner.id,
        )
        al.status, wb.status = "needs_reauth", "broken"
        s.add(Notification(shop_id=wb.id, kind="new_order", dedupe_key="k1", payload={}))
        wb_id, al_id = wb.id, al.id

    paused = cli("shops", "pause", "AL", "--reason", "holiday")
    assert paused.code == 0, paused
    with Session(clean_engine) as s:
        al = s.get(Shop, al_id)
        assert (al.status, al.status_reason) == ("disabled", "paused by the operator: holiday")
        assert al.credentials is not None

    # A paused shop's new login keeps it paused; its token is replaced.
    reconnected = cli("shops", "reconnect", str(al_id), timeout=60)
    assert reconnected.code == 0, reconnected
    assert "Open " in reconnected.out and "status disabled" in reconnected.out
    with Session(clean_engine) as s:
        assert credentials_of(s.get(Shop, al_id))["access_token"] != pair.access_token

    fixed = cli("shops", "set-token", "WB", "--token", world.mint_wb_token("wb1"))
    assert fixed.code == 0, fixed
    renamed = cli("shops", "rename", "WB", "WB Moscow")
    assert renamed.code == 0, renamed
    with Session(clean_engine) as s:
        wb = s.get(Shop, wb_id)
        assert (wb.status, wb.name) == ("active", "WB Moscow")
        assert credentials_of(wb)["token"] != "old"

    not_confirmed = cli("shops", "remove", "WB Moscow", "--purge")
    assert not_confirmed.code == 2 and "--yes" in one_line_error(not_confirmed)

    removed = cli("shops", "remove", "WB Moscow")
    assert removed.code == 0 and "data kept" in removed.out, removed
    with Session(clean_engine) as s:
        wb = s.get(Shop, wb_id)
        assert (wb.status, wb.credentials) == ("disabled", None)
        assert s.scalar(select(Notification.id).where(Notification.shop_id == wb_id)) is not None

    purged = cli("shops", "remove", str(wb_id), "--purge", "--yes")
    assert purged.code == 0, purged
    assert [s.id for s in _shops(clean_engine)] == [al_id]
    with Session(clean_engine) as s:  # its rows went with it (ON DELETE CASCADE)
        assert s.scalar(select(Notification.id).where(Notification.shop_id == wb_id)) is None
