// What every interop script shares: the running suite as tests/test_interop.py describes it
// (INTEROP_CONTEXT: a JSON file with the homeserver's URLs, fresh users and the bots), and
// matrix-js-sdk clients set up the way Element sets up its own.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { ClientEvent, createClient, SyncState } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// The library's chatter (several loggers, some straight to the console) would bury the test
// report, which node:test writes to stdout itself: quiet unless INTEROP_VERBOSE is set.
logger.setLevel(process.env.INTEROP_VERBOSE ? "debug" : "silent");
if (!process.env.INTEROP_VERBOSE) {
    for (const level of ["log", "info", "warn", "error", "debug", "trace"]) console[level] = () => {};
}

export const context = JSON.parse(readFileSync(process.env.INTEROP_CONTEXT, "utf8"));
export { sleep };

/** The next unused fresh user of this script (registered by pytest, password known). */
let nextUser = 0;
export function freshUser() {
    const user = context.users[nextUser++];
    if (!user) throw new Error(`tests/test_interop.py gave this script only ${context.users.length} users`);
    return user;
}

/** A plain request as a client makes it: [status, parsed JSON body]. */
export async function call(baseUrl, path, { token, method = "GET", body } = {}) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(baseUrl + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : {}; } catch { json = { raw: text }; }
    return [response.status, json];
}

/** Password login through an entrance (zone URL) as Element does; a js-sdk client, not started. */
export async function login(user, baseUrl = context.urls.internet) {
    const client = createClient({ baseUrl });
    const answer = await client.loginRequest({
        type: "m.login.password", identifier: { type: "m.id.user", user: user.user_id },
        password: user.password, initial_device_display_name: "interop (matrix-js-sdk)",
    });
    return createClient({ baseUrl, userId: answer.user_id, deviceId: answer.device_id,
                          accessToken: answer.access_token });
}

/** Start syncing as Element does (threads on, so receipts carry thread_id); resolves when prepared. */
export async function start(client) {
    const ready = new Promise((resolve, reject) => {
        const onSync = (state) => {
            if (state === SyncState.Prepared || state === SyncState.Syncing) {
                client.off(ClientEvent.Sync, onSync);
                resolve();
            } else if (state === SyncState.Error) {
                reject(new Error("first sync failed"));
            }
        };
        client.on(ClientEvent.Sync, onSync);
    });
    await client.startClient({ threadSupport: true, initialSyncLimit: 50, lazyLoadMembers: false });
    await ready;
    return client;
}

/** Until check() returns something truthy (what a person waits for on screen), or fail. */
export async function until(what, check, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        last = await check();
        if (last) return last;
        if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for ${what}`);
        await sleep(200);
    }
}

/** A room made by `owner` (started client) that `others` join; the room id, once all see it. */
export async function roomOf(owner, others, options = {}) {
    const { room_id: roomId } = await owner.createRoom({
        name: "総務課", invite: others.map((c) => c.getUserId()), ...options,
    });
    for (const other of others) await other.joinRoom(roomId);
    for (const client of [owner, ...others]) {
        await until(`${client.getUserId()} sees all members of ${roomId}`, () =>
            client.getRoom(roomId)?.getJoinedMemberCount() === others.length + 1);
    }
    return roomId;
}

/** Until `client` has the event in its room (from sync, in any timeline or thread). */
export async function seen(client, roomId, eventId) {
    return until(`${client.getUserId()} sees ${eventId}`, () => client.getRoom(roomId)?.findEventById(eventId));
}

export function stopAll(...clients) {
    for (const client of clients) client.stopClient();
}

/** For a script's after(): end once the last test is over (js-sdk leaves timers behind that would
 * keep Node running for minutes). node:test has reported every result by the time the timer
 * fires, and process.exit() keeps the exit code it set. */
export function endScript() {
    setTimeout(() => process.exit(), 2000).unref();
}
