"""The core through its generated Python bindings, against a real server: pairing, an offline
edit on both phones merged character by character, approvals, live sync's callback, the
error enum, and a private journal that never reaches the partner."""

import asyncio
import threading

import pytest


async def couple(kintsugi, server, tmp_path):
    alice = await kintsugi.init_device(str(tmp_path / "alice"), server.url, "Alice", "phone", None)
    code = await alice.invite(True)
    bob = await kintsugi.join_device(str(tmp_path / "bob"), server.url, "Bob", "phone", None, code)
    await alice.sync()
    await bob.sync()
    return alice, bob


def test_offline_edits_on_both_phones_merge_and_approvals_follow_the_text(kintsugi, server, tmp_path):
    async def scenario():
        alice, bob = await couple(kintsugi, server, tmp_path)
        boundary = alice.add_boundary("No contact with X", "contact")
        await alice.sync()
        await bob.sync()
        bob.approve_boundary(boundary)
        await bob.sync()
        await alice.sync()
        [agreed] = alice.boundaries()
        assert agreed.status == kintsugi.BoundaryStatus.AGREED

        # Both edit offline, then sync: both insertions survive, and the edit asks for approval again.
        alice.edit_boundary(boundary, "No contact with X, ever")
        bob.edit_boundary(boundary, "Absolutely no contact with X")
        for device in (alice, bob, alice):
            await device.sync()
        [on_alice], [on_bob] = alice.boundaries(), bob.boundaries()
        assert on_alice.text == on_bob.text
        assert "Absolutely" in on_alice.text and "ever" in on_alice.text
        assert on_alice.status == kintsugi.BoundaryStatus.PROPOSED

    asyncio.run(scenario())


def test_live_sync_tells_the_app_when_the_partner_edits(kintsugi, server, tmp_path):
    class Listener(kintsugi.SyncListener):
        def __init__(self):
            self.changed = threading.Event()
            self.online = threading.Event()
            self.documents = []

        def document_changed(self, document, description):
            self.documents.append((document, description))
            self.changed.set()

        def connection_changed(self, state):
            if isinstance(state, kintsugi.ConnectionState.ONLINE):
                self.online.set()

    async def scenario():
        alice, bob = await couple(kintsugi, server, tmp_path)
        listener = Listener()
        live = bob.start_live_sync(listener)
        assert listener.online.wait(30), "live sync came online"
        alice.add_boundary("Phones stay unlocked", "trust")
        await alice.sync()
        assert listener.changed.wait(30), "the callback fired"
        assert listener.documents[0][0] == "agreement"
        assert [b.text for b in bob.boundaries()] == ["Phones stay unlocked"]
        live.stop()

    asyncio.run(scenario())


def test_errors_are_the_typed_enum(kintsugi, server, tmp_path):
    async def scenario():
        alice, _ = await couple(kintsugi, server, tmp_path)
        with pytest.raises(kintsugi.KintsugiError.InvalidCode):
            await kintsugi.join_device(str(tmp_path / "eve"), server.url, "Eve", "phone", None, "not a code")
        with pytest.raises(kintsugi.KintsugiError.InvalidInput):
            alice.add_boundary("   ", "general")
        with pytest.raises(kintsugi.KintsugiError.UnknownId):
            alice.approve_boundary("no-such-boundary")
        with pytest.raises(kintsugi.KintsugiError.NotInitialised):
            kintsugi.Device.open(str(tmp_path / "nobody"))
        server.stop()
        alice.add_boundary("kept while offline", "general")
        with pytest.raises(kintsugi.KintsugiError.Unreachable):
            await alice.sync()
        assert alice.pending_changes() >= 1, "the edit is kept"

    asyncio.run(scenario())


def test_a_private_journal_entry_never_reaches_the_partner(kintsugi, server, tmp_path):
    async def scenario():
        alice, bob = await couple(kintsugi, server, tmp_path)
        alice.write_journal("only for me", 3, ["private"])
        await alice.sync()
        await bob.sync()
        assert [e.text for e in alice.journal()] == ["only for me"]
        assert bob.journal() == []

    asyncio.run(scenario())


def test_check_ins_therapy_and_the_space_s_devices(kintsugi, server, tmp_path):
    async def scenario():
        alice, bob = await couple(kintsugi, server, tmp_path)
        week = alice.check_in("2026-W40", 6, 4, 5, None, "a steadier week")
        assert week == "2026-W40"
        alice.log_therapy("2026-10-01", [], "first session together")
        await alice.sync()
        await bob.sync()
        [checkin] = bob.checkins()
        assert (checkin.name, checkin.trust, checkin.note) == ("Alice", 6, "a steadier week")
        assert [s.note for s in bob.therapy_sessions()] == ["first session together"]
        devices = await bob.devices()
        assert sorted(d.member for d in devices) == ["Alice", "Bob"]
        assert sum(d.this_device for d in devices) == 1

    asyncio.run(scenario())


def test_bad_input_to_every_operation_is_the_error_enum_never_a_crash(kintsugi, server, tmp_path):
    async def scenario():
        alice, _ = await couple(kintsugi, server, tmp_path)
        calls = [
            lambda: alice.add_boundary("", "general"),
            lambda: alice.edit_boundary("missing", "text"),
            lambda: alice.approve_boundary("missing"),
            lambda: alice.retire_boundary("missing"),
            lambda: alice.write_journal("", None, []),
            lambda: alice.write_journal("a mood out of range", 99, []),
            lambda: alice.check_in("not a week", 5, 5, None, None, ""),
            lambda: alice.check_in(None, 0, 5, None, None, ""),
            lambda: alice.log_therapy("not a date", [], ""),
            lambda: alice.share_journal("missing"),
            lambda: kintsugi.Device.open(str(tmp_path / "nobody")),
            lambda: kintsugi.wipe_device(str(tmp_path / "nobody")),
        ]
        for call in calls:
            with pytest.raises(kintsugi.KintsugiError):
                call()
        with pytest.raises(kintsugi.KintsugiError):
            await alice.revoke("no-such-device")
        assert alice.boundaries() == [] and alice.journal() == [], "nothing was written"

    asyncio.run(scenario())
