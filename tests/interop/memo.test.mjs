// The memo bot in a DM made the way Element makes one (createRoom with is_direct and the
// trusted_private_chat preset, then the m.direct account data), from the office PC (LGWAN entrance):
// what is written is kept and answered in a reply Element threads under the message.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { context, endScript, freshUser, login, start, stopAll, until } from "./lib/suite.mjs";

const bot = context.bots.memo;
let pc;

before(async () => {
    pc = await start(await login(freshUser(), context.urls.lgwan));
});
after(() => {
    stopAll(pc);
    endScript();
});

/** Send a text; the text of the bot's reply to it (m.in_reply_to, as Element shows replies). */
async function answer(roomId, body) {
    const { event_id: eventId } = await pc.sendMessage(roomId, null, { msgtype: "m.text", body });
    return until(`the memo bot's reply to ${body}`, () => pc.getRoom(roomId).getLiveTimeline().getEvents()
        .find((e) => e.getSender() === bot && e.replyEventId === eventId)?.getContent().body);
}

test("a DM with the memo bot as Element starts one: notes kept and listed", async () => {
    const { room_id: roomId } = await pc.createRoom({ is_direct: true, invite: [bot], preset: "trusted_private_chat" });
    await pc.setAccountData("m.direct", { [bot]: [roomId] });
    await until("the memo bot joins the DM", () => pc.getRoom(roomId)?.getMember(bot)?.membership === "join");
    assert.match(await answer(roomId, "来週の打合せ資料を準備"), /メモ #1 を保存しました/);
    assert.match(await answer(roomId, "現場の地図を確認"), /メモ #2 を保存しました/);
    const list = await answer(roomId, "!一覧");
    assert.ok(list.indexOf("現場の地図を確認") < list.indexOf("来週の打合せ資料を準備"), `newest first: ${list}`);
});
