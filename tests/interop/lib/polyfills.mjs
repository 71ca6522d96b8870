// Loaded first by every interop script (node --import): what matrix-js-sdk 43 expects of Node 22
// that Debian's Node (18 on bookworm, 20 from NodeSource) lacks. Only defined when missing, so a
// newer Node runs the library exactly as it ships.
import { webcrypto } from "node:crypto";

if (typeof Promise.withResolvers !== "function") {
    // ES2024 Promise.withResolvers (Node 22), exactly as specified.
    Promise.withResolvers = function withResolvers() {
        let resolve, reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

if (typeof globalThis.crypto === "undefined") {
    // Node 18 keeps Web Crypto under node:crypto only (global from Node 19).
    globalThis.crypto = webcrypto;
}
