// Image packs (MSC2545) as the clients that show them read them (Cinny, FluffyChat, Nheko), here
// through matrix-js-sdk's synced state: the user's im.ponies.emote_rooms account data names the
// pack rooms and state keys, each room's im.ponies.room_emotes state holds the images, an image's
// usage is its own or the pack's (default: both), and every mxc:// downloads with the user's token
// (authenticated media, as js-sdk builds the URL). A sticker sent from the pack is an m.sticker.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { endScript, freshUser, login, start, stopAll, until } from "./lib/suite.mjs";

let client;

before(async () => {
    client = await start(await login(freshUser()));
});
after(() => {
    stopAll(client);
    endScript();
});

/** Every image of every pack the account lists, as an MSC2545 client collects them. */
function packsOf(client) {
    const rooms = client.getAccountData("im.ponies.emote_rooms")?.getContent()?.rooms ?? {};
    const found = [];
    for (const [roomId, stateKeys] of Object.entries(rooms)) {
        for (const stateKey of Object.keys(stateKeys)) {
            const event = client.getRoom(roomId)?.currentState.getStateEvents("im.ponies.room_emotes", stateKey);
            if (!event) continue;
            const { pack = {}, images = {} } = event.getContent();
            for (const [shortcode, image] of Object.entries(images)) {
                found.push({ roomId, pack: pack.display_name, shortcode, ...image,
                             usage: image.usage ?? pack.usage ?? ["emoticon", "sticker"] });
            }
        }
    }
    return found;
}

test("the stamp pack as MSC2545 clients read it: listed rooms, images, usage, downloadable media", async () => {
    const images = await until("the pack in the synced account data and room state", () => {
        const all = packsOf(client);
        return all.length ? all : null;
    }, 60000);
    assert.ok(images.every((i) => i.pack && typeof i.pack === "string"), "the pack has a display name");
    for (const image of images) {
        assert.match(image.shortcode, /^[a-z0-9_-]+$/, "shortcodes clients can type");
        assert.ok(image.body, `${image.shortcode}: a label for screen readers and the picker`);
        assert.match(image.url, /^mxc:\/\/[^/]+\/[^/]+$/);
        assert.ok(image.usage.includes("sticker"), `${image.shortcode}: usable as a sticker`);
        const http = client.mxcUrlToHttp(image.url, undefined, undefined, undefined, false, true, true);
        const response = await fetch(http, { headers: { Authorization: `Bearer ${client.getAccessToken()}` } });
        assert.equal(response.status, 200, `${image.shortcode}: ${http}`);
        assert.match(response.headers.get("content-type") ?? "", /^image\//);
        assert.equal((await fetch(http)).status, 401, "not without a login");
    }
    // The pack room is one the account is in (clients read only the state of joined rooms).
    for (const roomId of new Set(images.map((i) => i.roomId))) {
        assert.equal(client.getRoom(roomId)?.getMyMembership(), "join");
    }

    // A sticker from the pack, sent as these clients send it, arrives as an ordinary m.sticker.
    const { room_id: roomId } = await client.createRoom({ name: "スタンプ試験" });
    const stamp = images[0];
    const { event_id: eventId } = await client.sendEvent(roomId, "m.sticker", {
        body: stamp.body, url: stamp.url, info: stamp.info ?? {},
    });
    const event = await until("the sticker in the timeline", () => client.getRoom(roomId).findEventById(eventId));
    assert.equal(event.getType(), "m.sticker");
    assert.equal(event.getContent().url, stamp.url);
});
