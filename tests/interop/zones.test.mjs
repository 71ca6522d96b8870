// Zones as Element meets them: password login through each entrance (the suite's nginx in front
// of Synapse's zone listeners), GET /zone, a first sync, and the same token refused on the other
// entrance with the suite's reason, in Japanese first.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { call, context, endScript, freshUser, login, start, stopAll } from "./lib/suite.mjs";

const ZONE = "/_synapse/client/lgwan/v1/zone";
const OTHER = { internet: "lgwan", lgwan: "internet" };
after(endScript);

for (const [entrance, urls] of Object.entries({ nginx: context.nginx, listener: context.urls })) {
    for (const zone of ["internet", "lgwan"]) {
        test(`login through the ${zone} entrance (${entrance}): /zone says ${zone}, the ${OTHER[zone]} entrance refuses the token`, async () => {
            const user = freshUser();
            const client = await login(user, urls[zone]);
            await start(client); // Element's first requests: they bind the device to the zone
            try {
                const token = client.getAccessToken();
                const [status, body] = await call(urls[zone], ZONE, { token });
                assert.equal(status, 200, JSON.stringify(body));
                assert.deepEqual(body, { zone, device_id: client.getDeviceId(), user_id: user.user_id });
                const { user_id: whoami } = await client.whoami();
                assert.equal(whoami, user.user_id);

                const [refused, why] = await call(urls[OTHER[zone]], ZONE, { token });
                assert.equal(refused, 403, JSON.stringify(why));
                assert.equal(why.errcode, "M_FORBIDDEN");
                assert.equal(why["jp.lgwan.reason"], "device_zone_mismatch");
                assert.match(why.error, /[\u3040-\u30ff\u4e00-\u9fff]/, "the error Element shows starts in Japanese");
                assert.ok(why["jp.lgwan.message"].en, "and has English too");
                // What Element's sync would get with the moved token: refused as well.
                const [syncStatus] = await call(urls[OTHER[zone]], "/_matrix/client/v3/sync?timeout=0", { token });
                assert.equal(syncStatus, 403);
                // Still fine at home.
                assert.equal((await call(urls[zone], ZONE, { token }))[0], 200);
            } finally {
                stopAll(client);
            }
        });
    }
}
