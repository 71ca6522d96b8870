// The sanitizer bot as Element users meet it, in a room with an office PC in it: a photo sent from a
// phone (internet entrance, through nginx) the way Element sends one (uploadContent, then m.image
// with its info), the bot's sanitized copy as a reply Element threads under the photo, and on the
// office PC (LGWAN entrance) the original withheld while the copy downloads through authenticated
// media, with the URL js-sdk's mxcUrlToHttp builds for Element.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { context, endScript, freshUser, login, roomOf, start, stopAll, until } from "./lib/suite.mjs";

const bot = context.bots.sanitizer;
let phone, pc;

before(async () => {
    phone = await start(await login(freshUser(), context.nginx.internet));
    pc = await start(await login(freshUser(), context.nginx.lgwan));
});
after(() => {
    stopAll(phone, pc);
    endScript();
});

/** GET a media URL as Element does (authenticated media: the token in a header): [status, type, bytes]. */
async function fetchMedia(client, mxc, thumbnail = false) {
    const url = thumbnail ? client.mxcUrlToHttp(mxc, 96, 96, "scale", false, true, true)
        : client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true);
    const response = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` } });
    return [response.status, response.headers.get("content-type") ?? "", Buffer.from(await response.arrayBuffer())];
}

test("a phone's photo: the office PC gets the bot's sanitized copy, never the original", async () => {
    const roomId = await roomOf(phone, [pc], { name: "現場報告" });
    await phone.invite(roomId, bot);
    await until("the sanitizer bot joins", () => phone.getRoom(roomId)?.getMember(bot)?.membership === "join", 60000);

    const photo = readFileSync(context.files.photo);
    const { content_uri: original } = await phone.uploadContent(photo, { name: "現場写真.jpg", type: "image/jpeg" });
    const { event_id: photoId } = await phone.sendMessage(roomId, null, {
        msgtype: "m.image", body: "現場写真.jpg", url: original,
        info: { mimetype: "image/jpeg", size: photo.length, w: 640, h: 480 },
    });

    // What the office PC's timeline shows: the bot's image reply to the photo (and its report).
    const copy = await until("the sanitized copy on the office PC", () => pc.getRoom(roomId)?.getLiveTimeline()
        .getEvents().find((e) => e.getSender() === bot && e.replyEventId === photoId
                          && e.getContent().msgtype === "m.image"), 120000);
    const report = pc.getRoom(roomId).getLiveTimeline().getEvents()
        .find((e) => e.getSender() === bot && e.replyEventId === photoId && e.getContent().msgtype === "m.notice");
    assert.match(report?.getContent().body ?? "", /無害化しました/);
    assert.equal(copy.getContent().body, "現場写真.jpg");
    assert.notEqual(copy.getContent().url, original);

    const [status, type, bytes] = await fetchMedia(pc, copy.getContent().url);
    assert.equal(status, 200, "the copy opens on the office PC");
    assert.match(type, /^image\/jpeg/);
    assert.equal(bytes.subarray(0, 2).toString("hex"), "ffd8");
    assert.ok(!bytes.includes(Buffer.from("GPS")) && !bytes.includes(Buffer.from("Exif")), "no camera data left");

    const [refused] = await fetchMedia(pc, original);
    assert.equal(refused, 403, "the original stays behind the gate");
    const [thumbStatus, thumbType, thumb] = await fetchMedia(pc, original, true);
    assert.equal(thumbStatus, 200, "the timeline shows a picture of why");
    assert.match(thumbType, /^image\/png/);
    assert.ok(!thumb.equals(photo));

    const [phoneStatus, , phoneBytes] = await fetchMedia(phone, original);
    assert.equal(phoneStatus, 200, "the phone that sent it still opens the original");
    assert.ok(phoneBytes.equals(photo));
});
