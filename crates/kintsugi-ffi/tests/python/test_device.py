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
