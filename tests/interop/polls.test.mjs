// Polls as Element shows them: the bot's native polls read through matrix-js-sdk's Poll model
// (Room.polls, Poll.getResponses, end events), counted the way Element's poll body counts them
// (each voter's latest response before the end; spoiled responses count for nobody), compared with
// the bot's edited summary (the latest edit, as js-sdk applies it) and its !結果 answer.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { M_POLL_RESPONSE, M_POLL_START } from "matrix-js-sdk";

import { context, endScript, freshUser, login, roomOf, sleep, start, stopAll, until } from "./lib/suite.mjs";

const bot = context.bots.polls;
const people = {};

before(async () => {
    for (const name of ["chief", "sato", "suzuki", "tanaka"]) {
        people[name] = await start(await login(freshUser(), context.urls.lgwan));
    }
});
after(() => {
    stopAll(...Object.values(people));
    endScript();
});

async function team() {
    const roomId = await roomOf(people.chief, [people.sato, people.suzuki, people.tanaka]);
    await people.chief.invite(roomId, bot);
    await until("the polls bot joins", () => people.chief.getRoom(roomId)?.getMember(bot)?.membership === "join");
    return roomId;
}

async function command(roomId, body) {
    return (await people.chief.sendMessage(roomId, { msgtype: "m.text", body })).event_id;
}

/** The bot's polls in the room, oldest first, once `count` are in js-sdk's Room.polls. */
async function pollsOf(roomId, count, known = new Set()) {
    return until(`${count} new polls in js-sdk`, () => {
        const polls = [...people.chief.getRoom(roomId).polls.values()]
            .filter((p) => p.rootEvent.getSender() === bot && !known.has(p.pollId))
            .sort((a, b) => a.rootEvent.getTs() - b.rootEvent.getTs());
        return polls.length >= count ? polls : null;
    });
}

/** The bot's summary message, as js-sdk shows it (with the latest edit applied). */
function summaryText(roomId, needle) {
    const events = people.chief.getRoom(roomId).getLiveTimeline().getEvents();
    const summary = events.filter((e) => e.getSender() === bot && !e.isRelation("m.replace")
                                  && e.getOriginalContent().msgtype === "m.notice"
                                  && (e.getContent().body ?? "").includes(needle)).at(-1);
    return summary?.getContent().body;
}

/** The summary's versions in the order Element received them: the original, then each edit. */
function summaryVersions(roomId, needle) {
    const events = people.chief.getRoom(roomId).getLiveTimeline().getEvents();
    const summary = events.filter((e) => e.getSender() === bot && !e.isRelation("m.replace")
                                  && e.getOriginalContent().msgtype === "m.notice"
                                  && (e.getContent().body ?? "").includes(needle)).at(-1);
    return [summary.getOriginalContent().body, ...events
        .filter((e) => e.isRelation("m.replace") && e.getWireContent()["m.relates_to"].event_id === summary.getId())
        .map((e) => e.getWireContent()["m.new_content"].body)];
}

/** A vote as Element's poll body sends it. */
async function vote(name, roomId, poll, ...answerIds) {
    await people[name].sendEvent(roomId, M_POLL_RESPONSE.name, {
        "m.relates_to": { rel_type: "m.reference", event_id: poll.pollId },
        [M_POLL_RESPONSE.name]: { answers: answerIds },
    });
}

/** answer id -> votes, as Element's MPollBody counts them from js-sdk's Poll. */
async function countLikeElement(poll) {
    const relations = await poll.getResponses();
    const latest = new Map();
    for (const event of relations.getRelations()) {
        const response = event.unstableExtensibleEvent;
        if (!response) continue;
        response.validateAgainst(poll.pollEvent);
        const previous = latest.get(event.getSender());
        if (!previous || previous.ts <= event.getTs()) {
            latest.set(event.getSender(), { ts: event.getTs(), answers: response.spoiled ? [] : response.answerIds });
        }
    }
    const counts = Object.fromEntries(poll.pollEvent.answers.map((a) => [a.id, 0]));
    for (const { answers } of latest.values()) for (const id of answers) counts[id] += 1;
    return counts;
}

/** "12/8 14:00-15:00" `days` days from today in Tokyo. */
function tokyoDay(days) {
    const d = new Date(Date.now() + 9 * 3600e3 + days * 86400e3);
    return `${d.getUTCMonth() + 1}/${d.getUTCDate()}`;
}

test("a survey: js-sdk's count (vote changes, spoiled votes, votes after the end) matches the summary and !結果", async () => {
    const roomId = await team();
    await command(roomId, "!アンケート 忘年会の会場は？\n居酒屋さくら\nホテル東\nどちらでも");
    const [poll] = await pollsOf(roomId, 1);
    assert.equal(poll.pollEvent.question.text, "忘年会の会場は？");
    const ids = poll.pollEvent.answers.map((a) => a.id);
    await vote("sato", roomId, poll, ids[0]);
    await vote("suzuki", roomId, poll, ids[1]);
    await vote("sato", roomId, poll, ids[1]); // changed mind: the latest counts
    await vote("tanaka", roomId, poll, "nonsense"); // spoiled
    await until("the summary to count sato and suzuki", () => summaryText(roomId, "忘年会")?.includes("・ホテル東: 2 票"));
    assert.deepEqual(await countLikeElement(poll), { [ids[0]]: 0, [ids[1]]: 2, [ids[2]]: 0 });
    assert.match(summaryText(roomId, "忘年会"), /回答 2 人/);

    await command(roomId, "!締切 1");
    await until("js-sdk sees the poll ended", () => poll.isEnded);
    await until("the summary says 締切済み", () => summaryText(roomId, "忘年会")?.includes("締切済み"));
    await vote("tanaka", roomId, poll, ids[0]); // after the end: counted by nobody
    await sleep(1500);
    const ended = people.chief.getRoom(roomId).polls.get(poll.pollId);
    assert.deepEqual(await countLikeElement(ended), { [ids[0]]: 0, [ids[1]]: 2, [ids[2]]: 0 });
    const summary = summaryText(roomId, "忘年会");
    assert.match(summary, /・ホテル東: 2 票/);
    assert.match(summary, /・居酒屋さくら: 0 票/);
    const results = await answerOf(roomId, "!結果 1");
    assert.match(results, /・ホテル東: 2 票/);
    assert.match(results, /締切済み/);
});

test("multiple choice: one yes/no poll per option, js-sdk's count (incl. a changed answer) matches !結果", async () => {
    const roomId = await team();
    await command(roomId, "!複数選択 参加できる研修 / 情報セキュリティ / 文書管理 / 法務");
    const polls = await pollsOf(roomId, 3);
    assert.deepEqual(polls.map((p) => p.pollEvent.question.text), ["情報セキュリティ", "文書管理", "法務"]);
    for (const poll of polls) {
        assert.deepEqual(poll.pollEvent.answers.map((a) => a.id), ["yes", "no"]);
        assert.equal(poll.pollEvent.maxSelections, 1);
    }
    for (const poll of polls) await vote("sato", roomId, poll, "yes");
    await vote("suzuki", roomId, polls[1], "yes");
    await vote("suzuki", roomId, polls[0], "yes");
    await vote("suzuki", roomId, polls[0], "no"); // changed
    await vote("tanaka", roomId, polls[2], "yes", "no"); // two answers to a one-answer poll: the first counts
    await vote("tanaka", roomId, polls[1], "maybe"); // not an answer of the poll: spoiled, counts for nobody
    const expected = [{ yes: 1, no: 1 }, { yes: 2, no: 0 }, { yes: 2, no: 0 }];
    const counted = async () => Promise.all(polls.map((poll) => countLikeElement(poll)));
    await until("js-sdk to have every vote", async () => JSON.stringify(await counted()) === JSON.stringify(expected))
        .catch(async () => assert.deepEqual(await counted(), expected));
    // The bot reads the room in order: its answer to a command sent after the votes counts them all.
    const results = await answerOf(roomId, "!結果 1");
    assert.match(results, /・文書管理: 2 票/);
    assert.match(results, /・情報セキュリティ: 1 票/);
    assert.match(results, /・法務: 2 票/);
    assert.ok(results.indexOf("文書管理") < results.indexOf("情報セキュリティ"), "best first");
});

test("a safety check: js-sdk's count of the poll (a changed answer, a spoiled one) matches the bot's summary", async () => {
    const roomId = await team();
    await command(roomId, "!安否確認 震度5強の地震");
    const [poll] = await pollsOf(roomId, 1);
    assert.match(poll.pollEvent.question.text, /^【安否確認】震度5強の地震/);
    assert.deepEqual(poll.pollEvent.answers.map((a) => a.id), ["safe_ok", "safe_no", "minor", "serious", "contact"]);
    await vote("sato", roomId, poll, "safe_ok");
    await vote("suzuki", roomId, poll, "minor");
    await vote("suzuki", roomId, poll, "serious"); // the latest answer counts
    await vote("tanaka", roomId, poll, "nonsense"); // spoiled: counts for nobody
    const expected = { safe_ok: 1, safe_no: 0, minor: 0, serious: 1, contact: 0 };
    await until("js-sdk to count the answers", async () => JSON.stringify(await countLikeElement(poll)) === JSON.stringify(expected))
        .catch(async () => assert.deepEqual(await countLikeElement(poll), expected));
    const summary = await until("the summary to count them", () => {
        const text = summaryText(roomId, "安否確認");
        return text?.includes("・重傷: 1 人") ? text : null;
    });
    for (const line of ["・無事（出勤可能）: 1 人", "・無事（出勤不可）: 0 人", "・軽傷: 0 人", "・重傷: 1 人", "・その他・連絡希望: 0 人"]) {
        assert.ok(summary.split("\n").includes(line), `${line} in\n${summary}`);
    }
    assert.match(summary, /回答 2 \/ 4 人/);
});

test("schedule coordination: after !日程決定 js-sdk sees every poll ended and the summary Element shows says 締切済み", async () => {
    const roomId = await team();
    await command(roomId, `!日程調整 課内打ち合わせ\n${tokyoDay(10)} 10:00\n${tokyoDay(11)} 14:00-15:00`);
    const polls = await pollsOf(roomId, 2);
    const [ok, maybe, ng] = polls[0].pollEvent.answers.map((a) => a.id);
    assert.equal(polls[0].pollEvent.maxSelections, 1);
    await vote("sato", roomId, polls[0], ok);
    await vote("suzuki", roomId, polls[0], maybe);
    await vote("sato", roomId, polls[1], ng);
    await vote("suzuki", roomId, polls[1], ok);
    await vote("suzuki", roomId, polls[1], ng); // changed
    await until("the summary counts the votes", () => summaryText(roomId, "課内打ち合わせ")?.includes("○1 △1 ×0"));
    assert.deepEqual(await countLikeElement(polls[0]), { [ok]: 1, [maybe]: 1, [ng]: 0 });
    assert.deepEqual(await countLikeElement(polls[1]), { [ok]: 0, [maybe]: 0, [ng]: 2 });
    assert.match(summaryText(roomId, "課内打ち合わせ"), /受付中/);

    // The bot's summary loop idle again (shipped pace: 1 s), as when a chief decides a while later:
    // closing wakes it (answers re-read), and it renders the summary while the polls are ending.
    await sleep(2500);
    await command(roomId, "!日程決定 1 1");
    await until("js-sdk sees both polls ended", () => polls.every((p) => p.isEnded));
    await until("the summary Element shows says 締切済み with the decision",
                () => /締切済み/.test(summaryText(roomId, "課内打ち合わせ")) && /決定: 候補1/.test(summaryText(roomId, "課内打ち合わせ")));
    await sleep(3000); // any edit still on its way
    assert.doesNotMatch(summaryText(roomId, "課内打ち合わせ"), /受付中/);
    // No version of the summary ever showed the decision while still 受付中, and nothing came after
    // the closed one (Element shows whichever edit came last).
    const versions = summaryVersions(roomId, "課内打ち合わせ");
    assert.deepEqual(versions.filter((v) => /決定/.test(v) && /受付中/.test(v)), []);
    const firstClosed = versions.findIndex((v) => /締切済み/.test(v));
    assert.deepEqual(versions.slice(firstClosed).filter((v) => /受付中/.test(v)), [], versions.join("\n---\n"));
    await vote("tanaka", roomId, polls[0], ng); // after the end
    await sleep(1500);
    assert.deepEqual(await countLikeElement(people.chief.getRoom(roomId).polls.get(polls[0].pollId)),
                     { [ok]: 1, [maybe]: 1, [ng]: 0 });
    assert.match(await answerOf(roomId, "!結果 1"), /締切済み/);
});

/** Send a command; the text of the bot's reply to it (a reply, as Element shows it). */
async function answerOf(roomId, body) {
    const eventId = await command(roomId, body);
    return until(`the bot's reply to ${body}`, () => people.chief.getRoom(roomId).getLiveTimeline().getEvents()
        .find((e) => e.getSender() === bot && e.replyEventId === eventId)?.getContent().body);
}
