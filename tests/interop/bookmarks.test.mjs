// Bookmarks as Element makes them: a 🔖 reaction from the reaction picker (m.annotation), the
// message edited in Element (m.replace with m.new_content), the reaction taken back (Element
// redacts it). GET /bookmarks shows what the owner sees in Element.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { call, context, endScript, freshUser, login, roomOf, start, stopAll, until } from "./lib/suite.mjs";

const PATH = "/_synapse/client/lgwan/v1/bookmarks";
const url = context.urls.internet;
const people = {};

before(async () => {
    for (const name of ["yamada", "sato"]) people[name] = await start(await login(freshUser()));
});
after(() => {
    stopAll(...Object.values(people));
    endScript();
});

async function listed(name) {
    const [status, body] = await call(url, PATH, { token: people[name].getAccessToken() });
    assert.equal(status, 200, JSON.stringify(body));
    return body.bookmarks;
}

test("a 🔖 from Element's reaction picker bookmarks the message; the bookmark shows Element's edit; taking the reaction back removes it", async () => {
    const roomId = await roomOf(people.yamada, [people.sato]);
    const { event_id: message } = await people.sato.sendMessage(roomId, null, { msgtype: "m.text", body: "会議は 3 階です" });
    const { event_id: reaction } = await people.yamada.sendEvent(roomId, "m.reaction", {
        "m.relates_to": { rel_type: "m.annotation", event_id: message, key: "🔖" },
    });
    const [item] = await until("the bookmark listed", async () => (await listed("yamada")).length ? listed("yamada") : null);
    assert.equal(item.event_id, message);
    assert.equal(item.room_id, roomId);
    assert.equal(item.body, "会議は 3 階です");
    assert.deepEqual(await listed("sato"), [], "a bookmark is its owner's only");

    // Element's edit: the bookmark shows the text Element now shows.
    await people.sato.sendMessage(roomId, null, {
        msgtype: "m.text", body: "* 会議は 5 階です",
        "m.new_content": { msgtype: "m.text", body: "会議は 5 階です" },
        "m.relates_to": { rel_type: "m.replace", event_id: message },
    });
    await until("the edit in the bookmark", async () => (await listed("yamada"))[0]?.body === "会議は 5 階です");

    // Element takes a reaction back by redacting it.
    await people.yamada.redactEvent(roomId, reaction);
    await until("the bookmark gone", async () => (await listed("yamada")).length === 0);
});
