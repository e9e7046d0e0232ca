// An Element-stack Matrix peer for interop tests: one user on matrix-js-sdk with its Rust crypto.
//
// Protocol: one JSON object per line on stdin, {"id": <any>, "cmd": "<name>", ...params};
// exactly one JSON line per request on stdout, {"id", "result"} or {"id", "error"}.
// Requests run concurrently. Everything else (sdk logging included) goes to stderr.
// Crypto lives in memory only: the device is lost when the process exits.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

// The sdk and its logger write to the console: keep stdout for the protocol alone.
const toStderr = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
for (const level of ["log", "info", "debug", "warn", "error", "trace"]) console[level] = toStderr;

// matrix-js-sdk >= 41 uses Promise.withResolvers (Node 22); harmless on the pinned version.
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function () {
        let resolve, reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

const sdk = await import("matrix-js-sdk");
const { AllDevicesIsolationMode, OnlySignedDevicesIsolationMode, EventShieldColour, EventShieldReason } = await import("matrix-js-sdk/lib/crypto-api/index.js");
const { logger: sdkLogger } = await import("matrix-js-sdk/lib/logger.js");
sdkLogger.setLevel(process.env.PEER_LOG_LEVEL || "warn", false);

function packageVersion(name) {
    try {
        const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
        return JSON.parse(readFileSync(url, "utf8")).version;
    } catch {
        return null;
    }
}
const SDK_VERSION = packageVersion("matrix-js-sdk");
const CRYPTO_WASM_VERSION = packageVersion("@matrix-org/matrix-sdk-crypto-wasm");

const MEGOLM = "m.megolm.v1.aes-sha2";

// Decryption refused for who sent it (their device unknown, or not known to be cross-signed
// yet) rather than for a missing key: DecryptionFailureCode values.
const SENDER_TRUST_FAILURES = new Set(["UNKNOWN_SENDER_DEVICE", "UNSIGNED_SENDER_DEVICE"]);

// The /sync long-poll timeout (`pollTimeout`; the sdk's default, as Element's, is 30 s). Every
// wait here gives up at 30 s, so with the default one long-poll that the homeserver does not
// cut short when the change comes in (a notification that is late or lost under load) uses
// the whole budget: the change arrives with the response sent at the poll's end, as the wait
// gives up. 2 s, like the bot's (sync.timeout_ms in make_clinic) and the nio users' syncs in
// these tests: a change announced late costs at most one short poll.
const SYNC_POLL_MS = 2000;

// How long a join may take to show in the sdk before it counts as missed: five long-polls.
const JOIN_GRACE_MS = 5 * SYNC_POLL_MS;

let client = null;
let password = null;
const timelines = new Map(); // roomId -> MatrixEvent[] (in arrival order)
const syncNotes = new Map(); // roomId -> the last few /sync summaries for it (see noteSync)
const reportedInvites = new Set();
const joinsAsked = new Set(); // rooms we joined through `join` (PEER_HIDE_OWN_JOIN)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The sync loop as seen from outside (ClientEvent.Sync), for failure messages: each state
// transition goes to stderr with a timestamp, and a wait that times out says where sync was.
const syncTrace = { state: null, syncs: 0, lastAt: null, lastError: null };
function traceSync(state, prev, data) {
    const now = Date.now();
    if (state !== prev || state !== "SYNCING") {
        toStderr(`[peer] ${new Date(now).toISOString()} sync ${prev} -> ${state}${data?.error ? ` (${data.error})` : ""}`);
    }
    if (data?.error) syncTrace.lastError = String(data.error);
    syncTrace.state = state;
    syncTrace.syncs += 1;
    syncTrace.lastAt = now;
}
// Per room: the section (invite/join/leave), our own member events in `state` and `timeline`
// (id:membership), whether the timeline was limited, and the timeline's types in order.
function noteSync(me, since, body) {
    const rooms = body?.rooms ?? {};
    const mine = (evs) => (evs ?? []).filter((e) => e.type === "m.room.member" && e.state_key === me)
        .map((e) => `${e.event_id ?? "stripped"}:${e.content?.membership}`);
    for (const section of ["invite", "join", "leave"]) {
        for (const [roomId, o] of Object.entries(rooms[section] ?? {})) {
            const tl = o.timeline?.events ?? [];
            const note = section === "invite"
                ? { section, since, mine: mine(o.invite_state?.events) }
                : {
                      section, since, state: mine(o.state?.events), timeline: mine(tl), limited: Boolean(o.timeline?.limited),
                      types: tl.map((e) => `${e.type}${e.state_key === me ? "(me)" : ""}`),
                  };
            let list = syncNotes.get(roomId);
            if (!list) syncNotes.set(roomId, (list = []));
            list.push(note);
            if (list.length > 6) list.shift();
            if (process.env.PEER_TRACE_SYNC) toStderr(`[sync-trace] ${new Date().toISOString()} ${roomId} ${JSON.stringify(note)}`);
        }
    }
}

function hideOwnJoins(me, body) {
    let hidden = false;
    for (const [roomId, o] of Object.entries(body?.rooms?.join ?? {})) {
        if (!joinsAsked.has(roomId)) continue;
        for (const part of [o.state, o.timeline]) {
            if (!part?.events) continue;
            const kept = part.events.filter((e) => !(e.type === "m.room.member" && e.state_key === me && e.content?.membership === "join"));
            hidden ||= kept.length !== part.events.length;
            part.events = kept;
        }
    }
    return hidden;
}

function syncStatus() {
    const ago = syncTrace.lastAt === null ? "never" : `${Date.now() - syncTrace.lastAt} ms ago`;
    return `sync state ${syncTrace.state}, ${syncTrace.syncs} syncs, last ${ago}` +
        (syncTrace.lastError ? `, last error ${syncTrace.lastError}` : "");
}

async function until(what, timeoutMs, probe, stepMs = 100, detail = null) {
    const deadline = Date.now() + (timeoutMs ?? 30000);
    for (;;) {
        const got = await probe();
        if (got !== undefined && got !== null && got !== false) return got;
        if (Date.now() > deadline) {
            const seen = detail ? `${detail()}; ` : "";
            throw new Error(`timed out after ${timeoutMs ?? 30000} ms waiting for ${what} (${seen}${syncStatus()})`);
        }
        await sleep(stepMs);
    }
}

function need(cond, msg) {
    if (!cond) throw new Error(msg);
}

function crypto() {
    need(client, "not logged in");
    const c = client.getCrypto();
    need(c, "crypto not initialised");
    return c;
}

function remember(event, room) {
    const roomId = room?.roomId ?? event.getRoomId();
    if (!roomId) return;
    let list = timelines.get(roomId);
    if (!list) timelines.set(roomId, (list = []));
    if (!list.includes(event)) list.push(event);
}

async function describe(event) {
    const out = {
        eventId: event.getId(),
        sender: event.getSender(),
        type: event.getType(),
        content: event.getContent(),
        encrypted: event.isEncrypted(),
        decrypted: event.isEncrypted() && !event.isDecryptionFailure() && !event.isBeingDecrypted(),
        stateKey: event.getStateKey(),
        ts: event.getTs(),
    };
    if (event.isBeingDecrypted()) out.pending = true;
    if (event.isDecryptionFailure()) {
        out.decryptionError = String(event.decryptionFailureReason ?? "unknown");
        out.decryptionErrorText = event.getContent()?.body;
    }
    if (event.isEncrypted() && out.decrypted) {
        try {
            const info = await client.getCrypto().getEncryptionInfoForEvent(event);
            if (info) {
                out.shield = {
                    colour: EventShieldColour[info.shieldColour] ?? info.shieldColour,
                    reason: info.shieldReason === null ? null : (EventShieldReason[info.shieldReason] ?? info.shieldReason),
                };
            }
        } catch (e) {
            out.shield = { error: String(e) };
        }
        out.senderCurve25519 = event.getSenderKey?.() ?? undefined;
    }
    return out;
}

async function roomEvents(roomId) {
    const list = timelines.get(roomId) ?? [];
    const out = [];
    for (const ev of list) {
        if (ev.isState()) continue;
        out.push(await describe(ev));
    }
    return out;
}

function matches(d, p) {
    if (p.sender && d.sender !== p.sender) return false;
    if (p.type && d.type !== p.type) return false;
    if (p.contentKey && !(d.content && p.contentKey in d.content)) return false;
    if (p.contains && !(typeof d.content?.body === "string" && d.content.body.includes(p.contains))) return false;
    return true;
}

// What a room list shows: the client-computed name (what Element displays), the membership,
// whether it is a Space and, for a Space, its children (m.space.child with a non-empty "via").
function roomSummary(room) {
    const st = room.getLiveTimeline().getState(sdk.EventTimeline.FORWARDS);
    const children = (st?.getStateEvents("m.space.child") ?? [])
        .filter((e) => Array.isArray(e.getContent()?.via) && e.getContent().via.length > 0)
        .map((e) => e.getStateKey());
    const custom = {};
    for (const type of ["carebot.pair", "carebot.desk", "carebot.space"]) {
        const ev = st?.getStateEvents(type, "");
        if (ev) custom[type] = ev.getContent();
    }
    return {
        roomId: room.roomId,
        name: room.name,
        membership: room.getMyMembership(),
        isSpace: room.isSpaceRoom(),
        children,
        state: custom,
    };
}

// Our membership as the server has it (its current state), or why it could not be read.
async function serverMembership(roomId) {
    try {
        return (await client.getStateEvent(roomId, "m.room.member", client.getUserId()))?.membership;
    } catch (e) {
        return `unreadable (${e?.errcode ?? e})`;
    }
}

// The server's current state of a room, set as the sdk's current state (and the room's
// encryption handed to the crypto layer if the sdk had not seen it): what a restarted client
// would hold after its first sync.
async function adoptServerState(roomId) {
    const room = client.getRoom(roomId);
    need(room, `unknown room ${roomId}`);
    const events = (await client.roomState(roomId)).map((e) => new sdk.MatrixEvent({ ...e, room_id: roomId }));
    room.currentState.setStateEvents(events);
    room.recalculate();
    const encryption = events.find((e) => e.getType() === "m.room.encryption" && e.getStateKey() === "");
    if (encryption && !(await client.getCrypto().isEncryptionEnabledInRoom(roomId))) {
        await client.getCrypto().onCryptoEvent(room, encryption);
    }
}

// A join the sdk never shows: the server's word on our membership, the sdk's own state, and
// what the last syncs said about the room.
async function joinEvidence(roomId) {
    const me = client.getUserId();
    const server = await serverMembership(roomId);
    const room = client.getRoom(roomId);
    const own = room?.currentState.getStateEvents("m.room.member", me);
    const sdkView = room && {
        membership: room.getMyMembership(),
        ownMemberEvent: own ? `${own.getId()}:${own.getContent()?.membership}` : null,
        liveTimeline: room.getLiveTimeline().getEvents().map((e) => `${e.getType()}${e.getStateKey() === me ? "(me)" : ""}`),
    };
    return `server membership: ${server}; sdk: ${JSON.stringify(sdkView)}; syncs: ${JSON.stringify(syncNotes.get(roomId) ?? [])}`;
}

// For the bench's `roundtrip` (bench/element.py): replies seen, by the event they reply to,
// with node's clock, so that the figure has no Python <-> node hop in it. Installed at the
// first roundtrip; `seen` is when an event first showed in a timeline (maybe still encrypted).
let replyWatch = null;
function watchReplies() {
    if (replyWatch) return replyWatch;
    const w = (replyWatch = { seen: new Map(), replies: new Map(), waiters: new Map() });
    const note = (event) => {
        const id = event.getId();
        if (id && !w.seen.has(id)) w.seen.set(id, performance.now());
        if (event.isEncrypted() && (event.isBeingDecrypted() || event.isDecryptionFailure() || !event.getClearContent())) return;
        const to = event.getContent()?.["m.relates_to"]?.["m.in_reply_to"]?.event_id;
        if (!to || w.replies.has(to)) return;
        const got = { at: performance.now(), event };
        w.replies.set(to, got);
        w.waiters.get(to)?.(got);
    };
    client.on(sdk.RoomEvent.Timeline, note);
    client.on(sdk.MatrixEventEvent.Decrypted, (event, err) => {
        if (!err) note(event);
    });
    return w;
}

const handlers = {
    async ping() {
        return { pong: true, sdk: SDK_VERSION, cryptoWasm: CRYPTO_WASM_VERSION, node: process.version };
    },

    async login({ baseUrl, userId, password: pw, deviceName }) {
        need(!client, "already logged in");
        const bare = sdk.createClient({ baseUrl });
        const resp = await bare.login("m.login.password", {
            identifier: { type: "m.id.user", user: userId },
            password: pw,
            initial_device_display_name: deviceName ?? "js-peer",
        });
        password = pw;
        const me = resp.user_id;
        // What each /sync said about our membership, per room (the last few), for failure
        // messages: a join that never shows must be told apart from a server that never sent it.
        const traceFetch = async (url, init) => {
            // PEER_DELAY_KEYS_QUERY_MS (a debugging aid): hold our /keys/query requests back, as a
            // loaded machine does, to replay races against the sender's device keys.
            if (process.env.PEER_DELAY_KEYS_QUERY_MS && String(url).includes("/keys/query")) {
                await sleep(Number(process.env.PEER_DELAY_KEYS_QUERY_MS));
            }
            const r = await fetch(url, init);
            if (String(url).includes("/sync")) {
                let body;
                try {
                    body = await r.clone().json();
                } catch {
                    return r; // not JSON (an error page): the sdk reports it
                }
                noteSync(me, new URL(String(url)).searchParams.get("since"), body);
                // PEER_HIDE_OWN_JOIN (a debugging aid): the sdk never sees our own joins of
                // the rooms we were invited to, to replay a join the sdk misses (see `join`).
                if (process.env.PEER_HIDE_OWN_JOIN && hideOwnJoins(me, body)) {
                    return new Response(JSON.stringify(body), { status: r.status, headers: r.headers });
                }
            }
            return r;
        };
        client = sdk.createClient({
            baseUrl,
            fetchFn: traceFetch,
            userId: resp.user_id,
            deviceId: resp.device_id,
            accessToken: resp.access_token,
        });
        await client.initRustCrypto({ useIndexedDB: false });
        client.on(sdk.RoomEvent.Timeline, (event, room) => remember(event, room));
        client.on(sdk.ClientEvent.Sync, traceSync);
        await client.startClient({ initialSyncLimit: 50, pollTimeout: SYNC_POLL_MS });
        await until("first sync", 30000, () => client.isInitialSyncComplete());
        const keys = await client.getCrypto().getOwnDeviceKeys();
        return { userId: resp.user_id, deviceId: resp.device_id, ed25519: keys.ed25519, curve25519: keys.curve25519 };
    },

    async bootstrapCrossSigning({ password: pw }) {
        const c = crypto();
        const userId = client.getUserId();
        await c.bootstrapCrossSigning({
            authUploadDeviceSigningKeys: async (makeRequest) => {
                await makeRequest({
                    type: "m.login.password",
                    identifier: { type: "m.id.user", user: userId },
                    password: pw ?? password,
                });
            },
        });
        // The signature on our own device lands asynchronously: wait for it (bounded).
        let own = null;
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline) {
            own = await c.getDeviceVerificationStatus(userId, client.getDeviceId());
            if (own?.signedByOwner) break;
            await new Promise((r) => setTimeout(r, 100));
        }
        const status = await c.getCrossSigningStatus();
        return {
            ready: await c.isCrossSigningReady(),
            status,
            ownDevice: own && { signedByOwner: own.signedByOwner, crossSigningVerified: own.crossSigningVerified },
            masterKey: await c.getCrossSigningKeyId(),
        };
    },

    // An identity reset, as Element's "Reset your identity": new master, self-signing and
    // user-signing keys; this device is signed by the new self-signing key.
    async resetCrossSigning({ password: pw }) {
        const c = crypto();
        const userId = client.getUserId();
        const before = await c.getCrossSigningKeyId();
        await c.bootstrapCrossSigning({
            setupNewCrossSigning: true,
            authUploadDeviceSigningKeys: async (makeRequest) => {
                await makeRequest({
                    type: "m.login.password",
                    identifier: { type: "m.id.user", user: userId },
                    password: pw ?? password,
                });
            },
        });
        const after = await until("the new master key", 15000, async () => {
            const key = await c.getCrossSigningKeyId();
            return key && key !== before ? key : null;
        });
        return { before, masterKey: after };
    },

    async setIsolation({ mode }) {
        const c = crypto();
        if (mode === "only-signed") c.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
        else if (mode === "all") c.setDeviceIsolationMode(new AllDevicesIsolationMode(false));
        else if (mode === "all-strict") c.setDeviceIsolationMode(new AllDevicesIsolationMode(true));
        else throw new Error(`unknown isolation mode ${mode}`);
        return { mode };
    },

    async whoami() {
        need(client, "not logged in");
        return { userId: client.getUserId(), deviceId: client.getDeviceId() };
    },

    async createRoom({ invite = [], encrypted = true, name }) {
        need(client, "not logged in");
        const opts = { invite, preset: "private_chat", name };
        if (encrypted) {
            opts.initial_state = [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }];
        }
        const { room_id: roomId } = await client.createRoom(opts);
        await until(`room ${roomId} in sync`, 30000, () => client.getRoom(roomId)?.getMyMembership() === "join");
        if (encrypted) await until(`encryption of ${roomId}`, 30000, () => client.getCrypto().isEncryptionEnabledInRoom(roomId));
        return { roomId };
    },

    async waitInvite({ timeoutMs, roomId: wanted }) {
        need(client, "not logged in");
        // With `roomId`: an invite to that room (a practitioner is also invited to their desk
        // and Space, in no guaranteed order).
        const roomId = await until(wanted ? `an invite to ${wanted}` : "an invite", timeoutMs, () => {
            const room = client.getRooms().find(
                (r) => r.getMyMembership() === "invite" && (wanted ? r.roomId === wanted : !reportedInvites.has(r.roomId)),
            );
            return room?.roomId;
        });
        reportedInvites.add(roomId);
        return { roomId };
    },

    // The join is the server's word (its answer); the sdk's view follows from /sync. When the
    // sdk has not shown it after JOIN_GRACE_MS of healthy syncing while the server says we are
    // joined, the sdk has missed it (it never corrects that by itself: a stale "invite" stays):
    // its room state is then taken from the server's current state, as a restarted client
    // takes it from its first sync, and that is said on stderr with the evidence.
    async join({ roomId, timeoutMs }) {
        need(client, "not logged in");
        const total = timeoutMs ?? 30000;
        const started = Date.now();
        joinsAsked.add(roomId);
        await client.joinRoom(roomId);
        toStderr(`[peer] ${new Date().toISOString()} joined ${roomId} (server said ok)`);
        const seen = () => client.getRoom(roomId)?.getMyMembership() === "join";
        const membershipSeen = () => `membership seen: ${client.getRoom(roomId)?.getMyMembership() ?? "no such room"}`;
        try {
            await until(`join of ${roomId} in sync`, Math.min(JOIN_GRACE_MS, total), seen, 100, membershipSeen);
        } catch (e) {
            const evidence = await joinEvidence(roomId);
            if ((await serverMembership(roomId)) !== "join") throw new Error(`${e.message}\n${evidence}`);
            toStderr(`[peer] ${new Date().toISOString()} the sdk missed our join of ${roomId}: ` +
                `room state taken from the server\n${evidence}`);
            await adoptServerState(roomId);
            try {
                await until(`join of ${roomId} in sync`, Math.max(total - (Date.now() - started), 1000), seen, 100, membershipSeen);
            } catch (e2) {
                throw new Error(`${e2.message}\n${await joinEvidence(roomId)}`);
            }
        }
        // Never write in clear into an encrypted room: wait for the sdk to encrypt there.
        const room = client.getRoom(roomId);
        if (room?.currentState.getStateEvents("m.room.encryption", "")) {
            await until(`encryption of ${roomId}`, Math.max(total - (Date.now() - started), 1000),
                () => client.getCrypto().isEncryptionEnabledInRoom(roomId));
        }
        toStderr(`[peer] ${new Date().toISOString()} join of ${roomId} seen in sync`);
        return { roomId };
    },

    async send({ roomId, body, format, html, msgtype = "m.text", extra }) {
        need(client, "not logged in");
        const content = { msgtype, body, ...(extra ?? {}) };
        if (html !== undefined || format !== undefined) {
            content.format = format ?? "org.matrix.custom.html";
            content.formatted_body = html ?? body;
        }
        const { event_id: eventId } = await client.sendMessage(roomId, content);
        return { eventId };
    },

    // Replies, edits, threads and redactions as Element sends them (additive helpers).
    async reply({ roomId, eventId, body, withFallback = true }) {
        need(client, "not logged in");
        const room = client.getRoom(roomId);
        const target = room?.findEventById(eventId);
        const content = { msgtype: "m.text", body, "m.relates_to": { "m.in_reply_to": { event_id: eventId } } };
        if (withFallback && target) {
            // The reply fallback older Element versions still send: quoted lines, then the text.
            const quoted = String(target.getContent()?.body ?? "").split("\n").map((l) => "> " + l);
            quoted[0] = `> <${target.getSender()}> ` + quoted[0].slice(2);
            content.body = quoted.join("\n") + "\n\n" + body;
            content.format = "org.matrix.custom.html";
            content.formatted_body =
                `<mx-reply><blockquote><a href="https://matrix.to/#/${roomId}/${eventId}">In reply to</a> ` +
                `<a href="https://matrix.to/#/${target.getSender()}">${target.getSender()}</a><br>` +
                `${String(target.getContent()?.body ?? "")}</blockquote></mx-reply>${body}`;
        }
        const { event_id: sent } = await client.sendMessage(roomId, content);
        return { eventId: sent };
    },

    async edit({ roomId, eventId, body, crafted = false }) {
        need(client, "not logged in");
        const content = crafted
            ? { msgtype: "m.text", body, "m.relates_to": { rel_type: "m.replace", event_id: eventId } }
            : {
                  msgtype: "m.text",
                  body: "* " + body,
                  "m.new_content": { msgtype: "m.text", body },
                  "m.relates_to": { rel_type: "m.replace", event_id: eventId },
              };
        const { event_id: sent } = await client.sendMessage(roomId, content);
        return { eventId: sent };
    },

    async sendInThread({ roomId, threadId, body }) {
        need(client, "not logged in");
        // The sdk adds m.relates_to {rel_type: m.thread, event_id: root, is_falling_back, m.in_reply_to}.
        const { event_id: sent } = await client.sendMessage(roomId, threadId, { msgtype: "m.text", body });
        return { eventId: sent };
    },

    async redact({ roomId, eventId, reason }) {
        need(client, "not logged in");
        const { event_id: sent } = await client.redactEvent(roomId, eventId, undefined, reason ? { reason } : undefined);
        return { eventId: sent };
    },

    async leave({ roomId }) {
        need(client, "not logged in");
        await client.leave(roomId);
        reportedInvites.delete(roomId); // a new invite to this room is reported again
        return { roomId };
    },

    async sendRaw({ roomId, content }) {
        need(client, "not logged in");
        const { event_id: sent } = await client.sendMessage(roomId, content);
        return { eventId: sent };
    },

    async messages({ roomId }) {
        need(client, "not logged in");
        return { events: await roomEvents(roomId) };
    },

    // What a restarted Element shows for the events it refused because it did not know the
    // sender's device yet (or could not yet check its cross-signature): the sdk takes those off
    // its retry list for good (rust-crypto.ts, EventDecryptor.onMegolmDecryptionError) and
    // tries again on nothing, not even when the sender's keys arrive; only a new decryption
    // attempt, as a reload makes, reads them. Returns the ids of the events tried again.
    async rereadSenderTrustFailures({ roomId }) {
        need(client, "not logged in");
        const retried = [];
        for (const ev of timelines.get(roomId) ?? []) {
            if (ev.isDecryptionFailure() && SENDER_TRUST_FAILURES.has(String(ev.decryptionFailureReason))) {
                await ev.attemptDecryption(client.getCrypto(), { isRetry: true });
                retried.push(ev.getId());
            }
        }
        return { retried };
    },

    async waitMessage({ roomId, timeoutMs, ...pattern }) {
        need(client, "not logged in");
        return await until(`a message in ${roomId} matching ${JSON.stringify(pattern)}`, timeoutMs, async () => {
            for (const d of await roomEvents(roomId)) {
                if (d.pending) continue;
                if (matches(d, pattern)) return d;
            }
            return undefined;
        }, 200);
    },

    // What a notification would be for each message of a room, as Element decides it: the
    // user's push rules (from the server) evaluated by the sdk on the decrypted content.
    async pushDetails({ roomId }) {
        need(client, "not logged in");
        const out = [];
        for (const ev of timelines.get(roomId) ?? []) {
            if (ev.isState()) continue;
            const { actions, rule } = client.getPushDetailsForEvent(ev, true);
            out.push({
                eventId: ev.getId(),
                senderName: ev.sender?.name ?? ev.getSender(),
                notify: Boolean(actions?.notify),
                highlight: Boolean(actions?.tweaks?.highlight),
                sound: actions?.tweaks?.sound ?? null,
                rule: rule?.rule_id ?? null,
            });
        }
        return { events: out };
    },

    // The room's state as the homeserver holds it (GET /rooms/{id}/state): what is not encrypted.
    async serverState({ roomId }) {
        need(client, "not logged in");
        return { events: await client.roomState(roomId) };
    },

    async state({ roomId, type, stateKey = "" }) {
        need(client, "not logged in");
        const room = client.getRoom(roomId);
        need(room, `unknown room ${roomId}`);
        const ev = room.getLiveTimeline().getState(sdk.EventTimeline.FORWARDS).getStateEvents(type, stateKey);
        return { content: ev ? ev.getContent() : null };
    },

    async rooms() {
        need(client, "not logged in");
        return { rooms: client.getRooms().map(roomSummary) };
    },

    async room({ roomId }) {
        need(client, "not logged in");
        const room = client.getRoom(roomId);
        need(room, `unknown room ${roomId}`);
        return roomSummary(room);
    },

    async userDevices({ userId, download = true }) {
        const c = crypto();
        const map = await c.getUserDeviceInfo([userId], download);
        const devices = {};
        for (const [deviceId, d] of map.get(userId) ?? new Map()) {
            devices[deviceId] = {
                deviceId,
                displayName: d.displayName ?? null,
                algorithms: d.algorithms,
                keys: Object.fromEntries(d.keys),
                verified: d.verified,
                signatures: d.signatures ? Object.fromEntries([...d.signatures].map(([u, m]) => [u, Object.fromEntries(m)])) : {},
            };
        }
        return { devices };
    },

    async deviceTrust({ userId, deviceId }) {
        const c = crypto();
        await c.getUserDeviceInfo([userId], true);
        const s = await c.getDeviceVerificationStatus(userId, deviceId);
        if (!s) return { known: false };
        return {
            known: true,
            signedByOwner: s.signedByOwner,
            crossSigningVerified: s.crossSigningVerified,
            locallyVerified: s.localVerified,
            tofu: s.tofu,
            isVerified: s.isVerified(),
        };
    },

    async userTrust({ userId }) {
        const c = crypto();
        await c.getUserDeviceInfo([userId], true);
        const s = await c.getUserVerificationStatus(userId);
        return {
            hasCrossSigningKeys: await c.userHasCrossSigningKeys(userId, true),
            isVerified: s.isVerified(),
            isCrossSigningVerified: s.isCrossSigningVerified(),
            wasCrossSigningVerified: s.wasCrossSigningVerified(),
            needsUserApproval: s.needsUserApproval,
        };
    },

    async verifyDevice({ userId, deviceId, verified = true }) {
        await crypto().setDeviceVerified(userId, deviceId, verified);
        return { userId, deviceId, verified };
    },

    async crossSignDevice({ deviceId }) {
        await crypto().crossSignDevice(deviceId);
        return { deviceId };
    },

    // Send `body` and wait, in node, for the decrypted reply (m.in_reply_to) to it. Times in ms
    // from the send call: elapsedMs to the reply readable, sendMs to the server's ack, seenMs to
    // the reply first in the timeline; serverMs: the reply's origin_server_ts minus ours.
    async roundtrip({ roomId, body, timeoutMs = 30000 }) {
        need(client, "not logged in");
        const w = watchReplies();
        const t0 = performance.now();
        const { event_id: eventId } = await client.sendMessage(roomId, { msgtype: "m.text", body });
        const sentAt = performance.now();
        const got = w.replies.get(eventId) ?? await new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                w.waiters.delete(eventId);
                reject(new Error(`no reply to ${eventId} in ${timeoutMs} ms (${syncStatus()})`));
            }, timeoutMs);
            w.waiters.set(eventId, (g) => {
                clearTimeout(timer);
                w.waiters.delete(eventId);
                resolve(g);
            });
        });
        w.replies.delete(eventId);
        const reply = got.event;
        const sent = client.getRoom(roomId)?.findEventById(eventId);
        const seenAt = w.seen.get(reply.getId()) ?? got.at;
        w.seen.delete(reply.getId());
        w.seen.delete(eventId);
        return {
            eventId,
            replyId: reply.getId(),
            sender: reply.getSender(),
            elapsedMs: got.at - t0,
            sendMs: sentAt - t0,
            seenMs: seenAt - t0,
            serverMs: sent ? reply.getTs() - sent.getTs() : null,
        };
    },

    async stop() {
        if (client) {
            client.stopClient();
        }
        setTimeout(() => process.exit(0), 50);
        return { stopped: true };
    },
};

function reply(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

async function handle(line) {
    let req;
    try {
        req = JSON.parse(line);
    } catch (e) {
        reply({ id: null, error: `bad json: ${e.message}` });
        return;
    }
    const { id, cmd, ...params } = req ?? {};
    const fn = handlers[cmd];
    if (!fn) {
        reply({ id, error: `unknown command ${cmd}` });
        return;
    }
    try {
        const result = await fn(params);
        reply({ id, result: result ?? null });
    } catch (e) {
        toStderr(`[peer] ${cmd} failed:`, e?.stack ?? e);
        reply({ id, error: String(e?.message ?? e), errcode: e?.errcode ?? undefined });
    }
}

process.on("unhandledRejection", (e) => toStderr("[peer] unhandled rejection:", e?.stack ?? e));
process.on("uncaughtException", (e) => toStderr("[peer] uncaught exception:", e?.stack ?? e));

const rl = createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
    if (line.trim()) handle(line);
});
rl.on("close", () => {
    if (client) client.stopClient();
    process.exit(0);
});
reply({ id: null, ready: true });
