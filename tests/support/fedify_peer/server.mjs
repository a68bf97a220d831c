// An independent ActivityPub server built with Fedify (@fedify/fedify, from the npm registry),
// for fedisora's loopback interop tests (tests/federation/test_fed_fedify.py). Never part of
// fedisora itself.
//
//     node server.mjs PORT ACTOR[,ACTOR...]
//
// Listens on 127.0.0.1:PORT only. In-memory KV store and message queue: everything is lost
// when the process ends. Each actor (a Person at /users/NAME) has an RSA key (HTTP
// signatures) and an Ed25519 key (FEP-8b32 proofs, listed as its assertionMethod); Fedify
// signs every outgoing activity with both. A control API under /control/ (JSON in, JSON out)
// lets the test act as the peer's users and read what the peer received and verified.
// Fedify refuses private addresses by default: allowPrivateAddress lets it fetch the
// fedisora instance on http://127.0.0.1.

import http from "node:http";
import { randomUUID } from "node:crypto";

import {
  createFederation,
  detachSignature,
  generateCryptoKeyPair,
  InProcessMessageQueue,
  MemoryKvStore,
  signObject,
  signRequest,
  verifyObject,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Announce,
  Create,
  Endpoints,
  Follow,
  Like,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Reject,
  Undo,
} from "@fedify/vocab";
import jsonld from "@fedify/vocab-runtime/jsonld";
import { Temporal } from "@js-temporal/polyfill";

const PORT = Number(process.argv[2]);
const NAMES = (process.argv[3] ?? "alice").split(",").filter(Boolean);
const ORIGIN = `http://127.0.0.1:${PORT}`;

// name -> {rsa, ed, autoAccept, followers: Map(uri -> {id, inboxId, endpoints})}
const actors = new Map();
for (const name of NAMES) {
  actors.set(name, {
    rsa: await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
    ed: await generateCryptoKeyPair("Ed25519"),
    autoAccept: true,
    followers: new Map(),
  });
}

const sent = new Map(); // activity id -> {activity, recipients, actor}: what deliver() sent
const incomingFollows = new Map(); // follow id -> {follow (vocab), follower (vocab), actor}
const received = []; // what the inbox listener got, after Fedify's verification
const posts = []; // every POST to an inbox, as received, with Fedify's answer
const outboxErrors = [];

// Every request this process sends (Fedify's deliveries and fetches), as answered: which
// HTTP signature it carried (Fedify knocks with RFC 9421 first, then draft-cavage on a 4xx).
const outgoing = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  let activity = null;
  if (request.method === "POST") {
    try {
      activity = JSON.parse(await request.clone().text())?.id ?? null;
    } catch {
      // not JSON: recorded without an id
    }
  }
  const response = await realFetch(request);
  const headers = request.headers;
  outgoing.push({
    method: request.method,
    url: request.url,
    activity,
    signature: headers.has("signature-input")
      ? "rfc9421"
      : headers.has("signature")
        ? "draft-cavage"
        : null,
    status: response.status,
  });
  return response;
};

const federation = createFederation({
  kv: new MemoryKvStore(),
  queue: new InProcessMessageQueue(),
  origin: ORIGIN,
  allowPrivateAddress: true,
  onOutboxError: (error, activity) => {
    outboxErrors.push({ error: String(error), activity: activity?.id?.href ?? null });
  },
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (!actors.has(identifier)) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: `Fedify ${identifier}`,
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      followers: ctx.getFollowersUri(identifier),
      manuallyApprovesFollowers: !actors.get(identifier).autoAccept,
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher((ctx, identifier) => {
    const actor = actors.get(identifier);
    return actor == null ? [] : [actor.rsa, actor.ed];
  });

federation.setFollowersDispatcher("/users/{identifier}/followers", (ctx, identifier) => {
  const actor = actors.get(identifier);
  if (actor == null) return null;
  return {
    items: [...actor.followers.values()].map((f) => ({
      id: new URL(f.id),
      inboxId: new URL(f.inboxId),
      endpoints: f.sharedInbox ? { sharedInbox: new URL(f.sharedInbox) } : null,
    })),
  };
});

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Activity, async (ctx, activity) => {
    const json = await activity.toJsonLd({ contextLoader: ctx.contextLoader });
    received.push({
      type: json.type,
      id: activity.id?.href ?? null,
      actor: activity.actorId?.href ?? null,
      object: activity.objectId?.href ?? null,
      recipient: ctx.recipient,
      json,
    });
    if (activity instanceof Follow) await onFollow(ctx, activity);
    else if (activity instanceof Undo) {
      const inner = await activity.getObject();
      if (inner instanceof Follow && inner.actorId != null) {
        for (const actor of actors.values()) actor.followers.delete(inner.actorId.href);
      }
    }
  })
  .onError((ctx, error) => {
    outboxErrors.push({ inboxError: String(error) });
  });

async function onFollow(ctx, follow) {
  const parsed = ctx.parseUri(follow.objectId);
  if (parsed?.type !== "actor" || !actors.has(parsed.identifier)) return;
  const follower = await follow.getActor();
  if (follower == null || follow.id == null) return;
  incomingFollows.set(follow.id.href, { follow, follower, actor: parsed.identifier });
  if (actors.get(parsed.identifier).autoAccept) {
    await answerFollow(ctx, follow.id.href, Accept);
  }
}

async function answerFollow(ctx, followId, Cls) {
  const pending = incomingFollows.get(followId);
  if (pending == null) throw new ControlError(404, `no Follow ${followId} received`);
  const { follow, follower, actor } = pending;
  const activity = new Cls({
    id: newId(actor),
    actor: ctx.getActorUri(actor),
    object: follow,
  });
  if (Cls === Accept) {
    actors.get(actor).followers.set(follower.id.href, {
      id: follower.id.href,
      inboxId: follower.inboxId.href,
      sharedInbox: follower.endpoints?.sharedInbox?.href ?? null,
    });
  } else {
    actors.get(actor).followers.delete(follower.id.href);
  }
  return deliver(ctx, actor, [follower], activity);
}

class ControlError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function newId(actor) {
  return new URL(`${ORIGIN}/users/${actor}/activities/${randomUUID()}`);
}

function actorName(body) {
  const name = body.actor;
  if (!actors.has(name)) throw new ControlError(400, `no actor ${name} here`);
  return name;
}

async function lookupActor(ctx, uri) {
  const found = await ctx.lookupObject(uri);
  if (found == null || found.inboxId == null) {
    throw new ControlError(502, `Fedify could not look up an actor at ${uri}`);
  }
  return found;
}

// Record *activity* in `sent` (so it can be undone) and send it as *name* to *recipients*
// (Fedify actors); its id.
async function deliver(ctx, name, recipients, activity, options = {}) {
  sent.set(activity.id.href, { activity, recipients, actor: name });
  await ctx.sendActivity({ identifier: name }, recipients, activity, options);
  return activity.id.href;
}

// deliver() to the actors at *recipientUris*, looked up first, at their shared inboxes.
async function send(ctx, name, recipientUris, activity) {
  const recipients = [];
  for (const uri of recipientUris) recipients.push(await lookupActor(ctx, uri));
  return deliver(ctx, name, recipients, activity, { preferSharedInbox: true });
}

// A public Create of *note* by *name*, addressed (cc) to body.to.
function publicCreate(ctx, name, note, body) {
  return new Create({
    id: newId(name),
    actor: ctx.getActorUri(name),
    object: note,
    to: PUBLIC_COLLECTION,
    ccs: body.to.map((u) => new URL(u)),
    published: Temporal.Now.instant(),
  });
}

function attributedNote(ctx, name, body) {
  const actorUri = ctx.getActorUri(name);
  return new Note({
    id: new URL(`${ORIGIN}/users/${name}/notes/${randomUUID()}`),
    attribution: actorUri,
    content: body.content ?? "a reply from Fedify",
    replyTarget: body.inReplyTo ? new URL(body.inReplyTo) : null,
    to: PUBLIC_COLLECTION,
    ccs: (body.to ?? []).map((u) => new URL(u)),
    published: Temporal.Now.instant(),
  });
}

// The key id Fedify gives the actor's key of that algorithm ("RSASSA-PKCS1-v1_5", "Ed25519").
async function keyOf(ctx, name, algorithm) {
  for (const pair of await ctx.getActorKeyPairs(name)) {
    if (pair.privateKey.algorithm.name === algorithm) return pair;
  }
  throw new ControlError(500, `${name} has no ${algorithm} key`);
}

async function describeActor(ctx, actor) {
  const assertionMethods = [];
  for await (const key of actor.getAssertionMethods({ documentLoader: ctx.documentLoader })) {
    const publicKey = await key.publicKey;
    assertionMethods.push({
      id: key.id?.href ?? null,
      controller: key.controllerId?.href ?? null,
      algorithm: publicKey?.algorithm?.name ?? null,
    });
  }
  const publicKeys = [];
  for await (const key of actor.getPublicKeys({ documentLoader: ctx.documentLoader })) {
    const publicKey = await key.publicKey;
    publicKeys.push({
      id: key.id?.href ?? null,
      owner: key.ownerId?.href ?? null,
      algorithm: publicKey?.algorithm?.name ?? null,
    });
  }
  return { assertionMethods, publicKeys };
}

const control = {
  // What Fedify's lookupObject makes of a URI (an actor: its keys as Fedify reads them).
  async lookup(ctx, body) {
    const found = await ctx.lookupObject(body.uri);
    if (found == null) return { found: false };
    const out = {
      found: true,
      type: found.constructor.typeId?.href ?? found.constructor.name,
      id: found.id?.href ?? null,
      json: await found.toJsonLd({ contextLoader: ctx.contextLoader }),
    };
    if (typeof found.getAssertionMethods === "function") {
      Object.assign(out, await describeActor(ctx, found));
    }
    if (typeof found.getAttachments === "function") {
      out.attachments = [];
      for await (const item of found.getAttachments({ documentLoader: ctx.documentLoader })) {
        out.attachments.push({
          type: item.constructor.name,
          mediaType: item.mediaType ?? null,
          url: item.url?.href ?? item.url?.href?.href ?? null,
          width: item.width ?? null,
          height: item.height ?? null,
          name: item.name?.toString() ?? null,
        });
      }
    }
    return out;
  },

  // The document as served, expanded by jsonld.js (Fedify's JSON-LD processor) in safe mode:
  // any term its contexts leave undefined (silently dropped otherwise) is an error.
  async expand(ctx, body) {
    const { document } = await ctx.documentLoader(body.uri);
    return expandSafely(ctx, document);
  },

  async expandJson(ctx, body) {
    return expandSafely(ctx, body.document);
  },

  // Fedify's verifyObject on a JSON object (e.g. an activity fedisora delivered).
  async verify(ctx, body) {
    return verifyJson(ctx, body.document);
  },

  async follow(ctx, body) {
    const name = actorName(body);
    const follow = new Follow({
      id: body.id ? new URL(body.id) : newId(name),
      actor: ctx.getActorUri(name),
      object: new URL(body.target),
    });
    return { id: await send(ctx, name, [body.target], follow) };
  },

  async like(ctx, body) {
    const name = actorName(body);
    const like = new Like({
      id: newId(name),
      actor: ctx.getActorUri(name),
      object: new URL(body.object),
      tos: body.to.map((u) => new URL(u)),
    });
    return { id: await send(ctx, name, body.to, like) };
  },

  async announce(ctx, body) {
    const name = actorName(body);
    const announce = new Announce({
      id: newId(name),
      actor: ctx.getActorUri(name),
      object: new URL(body.object),
      to: PUBLIC_COLLECTION,
      ccs: body.to.map((u) => new URL(u)),
      published: Temporal.Now.instant(),
    });
    return { id: await send(ctx, name, body.to, announce) };
  },

  async reply(ctx, body) {
    const name = actorName(body);
    const note = attributedNote(ctx, name, body);
    const create = publicCreate(ctx, name, note, body);
    return { id: await send(ctx, name, body.to, create), note: note.id.href };
  },

  async undo(ctx, body) {
    const name = actorName(body);
    const original = sent.get(body.id);
    if (original == null) throw new ControlError(404, `nothing sent as ${body.id}`);
    const undo = new Undo({
      id: newId(name),
      actor: ctx.getActorUri(name),
      object: original.activity,
    });
    return { id: await deliver(ctx, name, original.recipients, undo) };
  },

  async accept(ctx, body) {
    return { id: await answerFollow(ctx, body.follow, Accept) };
  },

  async reject(ctx, body) {
    return { id: await answerFollow(ctx, body.follow, Reject) };
  },

  async autoAccept(ctx, body) {
    actors.get(actorName(body)).autoAccept = Boolean(body.on);
    return { autoAccept: Boolean(body.on) };
  },

  // A Create(Note) of body.actor with its own Ed25519 proof (Fedify's signObject), POSTed to
  // body.to's inbox with an HTTP signature of body.via (another actor): a forwarded activity.
  // With body.tamper, the note's content is changed after signing (the proof no longer holds).
  // With body.deliver false it is only returned; body.document (such an activity, of any
  // server) is POSTed as it is, HTTP-signed by body.via.
  async forward(ctx, body) {
    const via = body.via ?? body.actor;
    if (!actors.has(via)) throw new ControlError(400, `no actor ${via} here`);
    const json = body.document ?? (await signedCreate(ctx, body));
    if (body.deliver === false) return { json, id: json.id, note: json.object.id };
    const recipient = await lookupActor(ctx, body.to[0]);
    const request = new Request(recipient.endpoints?.sharedInbox ?? recipient.inboxId, {
      method: "POST",
      headers: { "content-type": "application/activity+json", accept: "application/json" },
      body: JSON.stringify(json),
    });
    const rsa = await keyOf(ctx, via, "RSASSA-PKCS1-v1_5");
    const signedRequest = await signRequest(request, rsa.privateKey, rsa.keyId, {
      spec: "draft-cavage-http-signatures-12",
    });
    const response = await fetch(signedRequest);
    return {
      status: response.status,
      body: await response.text(),
      id: json.id,
      note: json.object.id,
      json,
    };
  },

  async state() {
    const followers = {};
    for (const [name, actor] of actors) followers[name] = [...actor.followers.keys()];
    return { received, posts, outboxErrors, followers, outgoing };
  },
};

async function signedCreate(ctx, body) {
  const name = actorName(body);
  const create = publicCreate(ctx, name, attributedNote(ctx, name, body), body);
  const ed = await keyOf(ctx, name, "Ed25519");
  // The proof names the key's Multikey id (the actor's assertionMethod), as Fedify's
  // sendActivity does; ed.keyId is the id of its CryptographicKey form.
  const signed = await signObject(create, ed.privateKey, ed.multikey.id, {
    contextLoader: ctx.contextLoader,
  });
  const json = publicAudienceInFull(
    await signed.toJsonLd({ format: "compact", contextLoader: ctx.contextLoader }),
  );
  if (body.tamper) json.object.content = `${json.object.content} (changed after signing)`;
  return json;
}

// jsonld.js's safe mode refuses what expansion would drop; the ActivityStreams context's
// "@vocab": "_:" keeps an undefined term instead, as a blank-node property ("_:term") that
// no reader understands: both count as undefined terms here.
async function expandSafely(ctx, document) {
  let expanded;
  try {
    expanded = await jsonld.expand(document, {
      documentLoader: ctx.contextLoader,
      safe: true,
    });
  } catch (error) {
    return { ok: false, error: String(error?.message ?? error), details: error?.details ?? null };
  }
  const undefinedTerms = new Set();
  const walk = (value) => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (value == null || typeof value !== "object") return;
    for (const [key, item] of Object.entries(value)) {
      if (key.startsWith("_:")) undefinedTerms.add(key.slice(2));
      if (key === "@type") {
        for (const type of [item].flat()) {
          if (typeof type === "string" && type.startsWith("_:")) undefinedTerms.add(type.slice(2));
        }
      }
      walk(item);
    }
  };
  walk(expanded);
  return { ok: undefinedTerms.size === 0, undefinedTerms: [...undefinedTerms], expanded };
}

// signObject signs the compact form with the public audience written in full, as
// sendActivity sends it (Fedify's normalizeOutgoingActivityJsonLd, which is not exported);
// toJsonLd writes it "as:Public". The activity goes out in the form that was signed.
function publicAudienceInFull(json) {
  const full = PUBLIC_COLLECTION.href;
  const rewrite = (node) => {
    if (node == null || typeof node !== "object" || Array.isArray(node)) return;
    for (const field of ["to", "cc", "bto", "bcc", "audience"]) {
      const value = node[field];
      if (value === "as:Public") node[field] = full;
      else if (Array.isArray(value)) node[field] = value.map((v) => (v === "as:Public" ? full : v));
    }
    rewrite(node.object);
  };
  rewrite(json);
  return json;
}

// As Fedify's inbox checks proofs: on the activity without its Linked Data Signature, which
// Fedify adds after the proof (verifyObject fails on Fedify's own activities with it).
async function verifyJson(ctx, document) {
  try {
    const verified = await verifyObject(Activity, detachSignature(document), {
      documentLoader: ctx.documentLoader,
      contextLoader: ctx.contextLoader,
    });
    return { verified: verified != null };
  } catch (error) {
    return { verified: false, error: String(error?.message ?? error) };
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function toRequest(req, body) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value != null) headers.set(name, value);
  }
  const hasBody = !["GET", "HEAD"].includes(req.method);
  return new Request(new URL(req.url, ORIGIN), {
    method: req.method,
    headers,
    body: hasBody ? body : undefined,
  });
}

async function writeResponse(res, response) {
  const headers = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

function json(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    const url = new URL(req.url, ORIGIN);
    const ctx = federation.createContext(new URL(ORIGIN), undefined);
    if (url.pathname.startsWith("/control/")) {
      const handler = control[url.pathname.slice("/control/".length)];
      if (handler == null) return json(res, 404, { error: `no control ${url.pathname}` });
      const input = body.length ? JSON.parse(body.toString("utf8")) : {};
      return json(res, 200, await handler(ctx, input));
    }
    const response = await federation.fetch(toRequest(req, body), { contextData: undefined });
    if (req.method === "POST" && url.pathname.endsWith("inbox")) {
      let document = null;
      try {
        document = JSON.parse(body.toString("utf8"));
      } catch {
        // recorded as null: not JSON
      }
      // Fedify's own verification of the object integrity proofs on what was delivered,
      // done before the POST is listed (a test reading the list sees it done).
      const proof = document?.proof != null ? await verifyJson(ctx, document) : null;
      posts.push({ path: url.pathname, status: response.status, document, proof });
    }
    return await writeResponse(res, response);
  } catch (error) {
    const status = error instanceof ControlError ? error.status : 500;
    return json(res, status, { error: String(error?.stack ?? error) });
  }
});

server.listen(PORT, "127.0.0.1", () => {
  console.log(`fedify peer on ${ORIGIN} with ${NAMES.join(", ")}`);
});
