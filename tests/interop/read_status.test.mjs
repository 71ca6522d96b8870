// Read status (既読) against matrix-js-sdk: receipts sent exactly as Element sends them (threads
// on: thread_id "main" or the thread root; private receipts; unthreaded markers), and what the
// suite's read_status route and batch endpoint answer, compared with js-sdk's own
// Room.hasUserReadEvent as another member's Element computes it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ReceiptType } from "matrix-js-sdk";

import { call, context, endScript, freshUser, login, roomOf, seen, start, stopAll, until } from "./lib/suite.mjs";

const PREFIX = "/_synapse/client/lgwan/v1/rooms";
const url = context.urls.internet;
const people = {};
let names;

before(async () => {
    for (const name of ["kacho", "sato", "suzuki", "tanaka"]) people[name] = await start(await login(freshUser()));
    names = Object.fromEntries(Object.entries(people).map(([name, c]) => [c.getUserId(), name]));
});
after(() => {
    stopAll(...Object.values(people));
    endScript();
});

async function say(name, roomId, body, threadRoot) {
    const content = { msgtype: "m.text", body };
    if (threadRoot) content["m.relates_to"] = { rel_type: "m.thread", event_id: threadRoot };
    if (threadRoot) openThread(people[name], roomId, threadRoot);
    // As Element's composer sends it: with the thread id, so the local echo lands in the thread.
    const { event_id: eventId } = await people[name].sendMessage(roomId, threadRoot ?? null, content);
    for (const client of Object.values(people)) await seen(client, roomId, eventId);
    return eventId;
}

/** Element's thread panel: opening a thread makes the client's Thread object for it. */
function openThread(client, roomId, root) {
    const room = client.getRoom(roomId);
    return room.getThread(root) ?? room.createThread(root, room.findEventById(root), [], true);
}

/** What Element's read marker code does when `name` has looked at the event. */
async function read(name, roomId, eventId, { type = ReceiptType.Read, unthreaded = false } = {}) {
    const client = people[name];
    const event = await seen(client, roomId, eventId);
    await client.sendReadReceipt(event, type, unthreaded);
}

/** read_status of one event: [names who read, names who did not]. */
async function serverReaders(roomId, eventId, asker = "kacho") {
    const [status, body] = await call(url, `${PREFIX}/${encodeURIComponent(roomId)}/read_status/${encodeURIComponent(eventId)}`,
                                      { token: people[asker].getAccessToken() });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.read_count, body.read.length);
    assert.equal(body.unread_count, body.unread.length);
    return [new Set(body.read.map((r) => names[r.user_id])), new Set(body.unread.map((u) => names[u]))];
}

/** Who js-sdk (in `observer`'s Element) says has read the event. */
function sdkReaders(roomId, eventId, observer = "kacho") {
    const room = people[observer].getRoom(roomId);
    return new Set(Object.keys(people).filter((name) => room.hasUserReadEvent(people[name].getUserId(), eventId)));
}

const sorted = (set) => [...set].sort();

/** Server and js-sdk agree on every event, once the receipts reached the observer's sync. */
async function agreeOnAll(roomId, eventIds) {
    for (const eventId of eventIds) {
        const [read] = await serverReaders(roomId, eventId);
        try {
            await until(`js-sdk agreeing on ${eventId}`, () =>
                JSON.stringify(sorted(sdkReaders(roomId, eventId))) === JSON.stringify(sorted(read)), 10000);
        } catch {
            assert.deepEqual(sorted(sdkReaders(roomId, eventId)), sorted(read), `readers of ${eventId}: js-sdk vs read_status`);
        }
    }
}

test("main timeline receipts (thread_id main) cover the main timeline only, as in js-sdk", async () => {
    const roomId = await roomOf(people.kacho, [people.sato, people.suzuki, people.tanaka]);
    const root = await say("kacho", roomId, "道路補修の件");
    const inThread = await say("kacho", roomId, "写真を追加しました", root);
    const later = await say("kacho", roomId, "別件です");
    await read("suzuki", roomId, later);
    const sent = (await seen(people.suzuki, roomId, later));
    assert.equal(sent.threadRootId, undefined);
    await until("suzuki's receipt in kacho's Element", () => people.kacho.getRoom(roomId).hasUserReadEvent(people.suzuki.getUserId(), later));
    assert.deepEqual(sorted((await serverReaders(roomId, root))[0]), ["kacho", "suzuki"]);
    assert.deepEqual(sorted((await serverReaders(roomId, inThread))[0]), ["kacho"]);
    await agreeOnAll(roomId, [root, inThread, later]);
});

for (const [author, warm] of [["kacho", false], ["suzuki", false], ["kacho", true], ["suzuki", true]]) {
    test(`a thread receipt (thread_id = root) covers that thread only, as in js-sdk (the b1 case; m1 by ${author}${warm ? ", read status shown before" : ""})`, async () => {
        // A = suzuki, B = sato: B writes b1 in the room, then a reply in the thread under m1;
        // A reads the thread reply in Element's thread panel (thread_id = m1).
        const roomId = await roomOf(people.kacho, [people.sato, people.suzuki, people.tanaka]);
        const m1 = await say(author, roomId, "m1: 予算の件");
        const b1 = await say("sato", roomId, "b1: 会議室の予約");
        const reply = await say("sato", roomId, "b2: 見積りを添付します", m1);
        if (warm) for (const eventId of [m1, b1, reply]) await serverReaders(roomId, eventId);
        await read("suzuki", roomId, reply);
        await until("suzuki's thread receipt in kacho's Element",
                    () => people.kacho.getRoom(roomId).hasUserReadEvent(people.suzuki.getUserId(), reply));
        assert.ok((await serverReaders(roomId, reply))[0].has("suzuki"));
        // b1 is in the main timeline, which suzuki has not opened since: not read (spec: a threaded
        // receipt applies only to the events of its thread; the user guide's thread rule).
        const [readB1, unreadB1] = await serverReaders(roomId, b1);
        assert.ok(unreadB1.has("suzuki"), `read_status of b1 lists suzuki as read: ${sorted(readB1)}`);
        assert.equal(people.kacho.getRoom(roomId).hasUserReadEvent(people.suzuki.getUserId(), b1), false);
        await agreeOnAll(roomId, [m1, b1, reply]);
    });
}

test("unthreaded receipts cover everything before them, threads included, as in js-sdk", async () => {
    const roomId = await roomOf(people.kacho, [people.sato, people.suzuki, people.tanaka]);
    const root = await say("kacho", roomId, "防災訓練の件");
    const inThread = await say("sato", roomId, "参加します", root);
    const last = await say("kacho", roomId, "集合は9時です");
    const afterwards = await say("kacho", roomId, "雨天中止");
    await read("tanaka", roomId, last, { unthreaded: true });
    await until("tanaka's unthreaded receipt in kacho's Element",
                () => people.kacho.getRoom(roomId).hasUserReadEvent(people.tanaka.getUserId(), last));
    for (const eventId of [root, inThread, last]) assert.ok((await serverReaders(roomId, eventId))[0].has("tanaka"));
    assert.ok((await serverReaders(roomId, afterwards))[1].has("tanaka"));
    await agreeOnAll(roomId, [root, inThread, last, afterwards]);
});

test("private receipts are shown to nobody, not even in js-sdk of other members", async () => {
    const roomId = await roomOf(people.kacho, [people.sato, people.suzuki, people.tanaka]);
    const notice = await say("kacho", roomId, "人事異動のお知らせ");
    const root = await say("kacho", roomId, "異動先の件");
    const inThread = await say("kacho", roomId, "詳細はこちら", root);
    await read("sato", roomId, notice, { type: ReceiptType.ReadPrivate });
    await read("sato", roomId, inThread, { type: ReceiptType.ReadPrivate });
    await read("suzuki", roomId, root); // a public one to know when receipts have arrived
    await until("suzuki's receipt in kacho's Element",
                () => people.kacho.getRoom(roomId).hasUserReadEvent(people.suzuki.getUserId(), root));
    for (const eventId of [notice, root, inThread]) {
        assert.ok((await serverReaders(roomId, eventId))[1].has("sato"), eventId);
        assert.ok((await serverReaders(roomId, eventId, "sato"))[1].has("sato"), "not even to sato");
    }
    await agreeOnAll(roomId, [notice, root, inThread]);
});

test("writing in a thread reads the thread (and its root), as js-sdk counts it", async () => {
    const roomId = await roomOf(people.kacho, [people.sato, people.suzuki, people.tanaka]);
    const before1 = await say("kacho", roomId, "先週の議事録");
    const root = await say("kacho", roomId, "来週の予定");
    const first = await say("kacho", roomId, "月曜は休みです", root);
    await say("tanaka", roomId, "了解しました", root);
    const [readFirst] = await serverReaders(roomId, first);
    assert.ok(readFirst.has("tanaka"));
    assert.ok((await serverReaders(roomId, before1))[1].has("tanaka"), "the main timeline before it stays unread");
    await agreeOnAll(roomId, [before1, root, first]);
});

test("the batch endpoint counts what read_status lists, for Element's receipts", async () => {
    const roomId = await roomOf(people.kacho, [people.sato, people.suzuki, people.tanaka]);
    const main = [];
    for (let i = 0; i < 4; i++) main.push(await say("kacho", roomId, `連絡 ${i}`));
    const threadEvents = [await say("sato", roomId, "スレッド 1", main[1]), await say("kacho", roomId, "スレッド 2", main[1])];
    await read("sato", roomId, main[2]);
    await read("suzuki", roomId, threadEvents[0]);
    await read("tanaka", roomId, main[3], { unthreaded: true });
    const all = [...main, ...threadEvents];
    const [status, body] = await call(url, `${PREFIX}/${encodeURIComponent(roomId)}/read_status`,
                                      { token: people.kacho.getAccessToken(), method: "POST", body: { event_ids: all } });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.events.map((e) => e.event_id), all);
    for (const item of body.events) {
        const [read, unread] = await serverReaders(roomId, item.event_id);
        assert.deepEqual([item.read_count, item.unread_count], [read.size, unread.size], item.event_id);
    }
    await agreeOnAll(roomId, all);
});
