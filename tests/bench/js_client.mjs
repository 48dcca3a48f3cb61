// The official Apify JavaScript client (npm apify-client) as the peer of the extension in
// `make bench`: one call per line of a JSON-lines file, at most --concurrency requests in
// flight, and one line of JSON on stdout with what happened and how long the calls took.
//
//   node tests/bench/js_client.mjs --bodies FILE --concurrency 8 \
//        [--op create|update|delete] [--base-url http://127.0.0.1:PORT] [--token test-token]
//
// --op create (the default): each line is one WebhookCreate object, sent with
//   client.webhooks().create(body). tests/bench/bench.py writes there exactly the bodies the
//   extension sends (taken from apify_dry_run), idempotencyKey included, so both clients send the
//   same requests.
// --op update: each line is {"id": WEBHOOK_ID, "body": WebhookUpdate}, sent with
//   client.webhook(id).update(body) (PUT /v2/webhooks/{id}); bench.py writes the fields the
//   extension's UPDATE changes, so both clients send the same bodies to the same webhooks.
// --op delete: each line is {"id": WEBHOOK_ID}, sent with client.webhook(id).delete()
//   (DELETE /v2/webhooks/{id}).
// The client keeps its defaults (8 retries of 429, 5xx and network errors, 500 ms first
// backoff, 360 s timeout): this measures the client as shipped.
//
// apify-client is installed in tests/js (npm ci --no-audit --no-fund), not beside this file, so
// it is loaded through a require() rooted there.
//
// Output (stdout, one line): {"n", "op", "concurrency", "done" (calls that did what was asked:
// a webhook with an id created, the same webhook returned updated, the delete resolved),
// "created" (= done, for --op create; 0 otherwise), "failed", "errors" (up to 5 messages),
// "elapsedMs" (first call made to last one settled), "cpuUserUs", "cpuSysUs" (process.cpuUsage()
// over the same span), "startupMs" (process start to first call), "vmHwmKb" (this process's peak
// resident set since it started, VmHWM of /proc/self/status; null where there is no /proc)}.
// Exit status 0 when every call succeeded, 1 otherwise, 2 on bad arguments.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

function usage(message) {
    process.stderr.write(`js_client: ${message}\n`);
    process.exit(2);
}

const { values: args } = parseArgs({
    options: {
        bodies: { type: 'string' },
        concurrency: { type: 'string', default: '1' },
        op: { type: 'string', default: 'create' },
        'base-url': { type: 'string', default: process.env.APIFY_API_BASE_URL },
        token: { type: 'string', default: process.env.APIFY_TOKEN },
    },
    strict: true,
});

const concurrency = Number.parseInt(args.concurrency, 10);
if (!args.bodies) usage('--bodies FILE is required');
if (!['create', 'update', 'delete'].includes(args.op)) usage(`bad --op ${args.op}`);
if (!Number.isInteger(concurrency) || concurrency < 1) usage(`bad --concurrency ${args.concurrency}`);
if (!args['base-url']) usage('no base URL: pass --base-url or set APIFY_API_BASE_URL');
if (!args.token) usage('no token: pass --token or set APIFY_TOKEN');

const requireFromJs = createRequire(new URL('../js/package.json', import.meta.url));
const { ApifyClient } = requireFromJs('apify-client');

const bodies = readFileSync(args.bodies, 'utf8').split('\n').filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));

const client = new ApifyClient({ token: args.token, baseUrl: args['base-url'] });
const webhooks = client.webhooks();

// One call of the chosen kind for one line; resolves to an error message, or null when the
// call did what was asked.
const calls = {
    async create(body) {
        const webhook = await webhooks.create(body);
        return webhook && typeof webhook.id === 'string'
            ? null : `no id in ${JSON.stringify(webhook).slice(0, 200)}`;
    },
    async update(item) {
        const webhook = await client.webhook(item.id).update(item.body);
        return webhook && webhook.id === item.id
            ? null : `not webhook ${item.id}: ${JSON.stringify(webhook).slice(0, 200)}`;
    },
    async delete(item) {
        await client.webhook(item.id).delete();
        return null;
    },
};
const call = calls[args.op];

let next = 0;
let done = 0;
let failed = 0;
const errors = [];

// One of `concurrency` workers: takes the next line until none is left, one request at a time.
async function worker() {
    while (next < bodies.length) {
        const body = bodies[next];
        next += 1;
        try {
            const problem = await call(body);
            if (problem === null) {
                done += 1;
            } else {
                failed += 1;
                if (errors.length < 5) errors.push(problem);
            }
        } catch (err) {
            failed += 1;
            if (errors.length < 5) errors.push(`${err.statusCode ?? '-'} ${err.type ?? ''} ${err.message}`);
        }
    }
}

const startupMs = performance.now();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, worker));
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);

// The peak RSS of this process since exec. (getrusage's maxrss would also count what the parent
// had resident when it forked us: Linux carries it over exec.)
let vmHwmKb = null;
try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) vmHwmKb = Number(match[1]);
} catch {
    // no /proc: leave it null
}

process.stdout.write(`${JSON.stringify({
    n: bodies.length,
    op: args.op,
    concurrency,
    done,
    created: args.op === 'create' ? done : 0,
    failed,
    errors,
    elapsedMs,
    cpuUserUs: cpu.user,
    cpuSysUs: cpu.system,
    startupMs,
    vmHwmKb,
})}\n`);
process.exitCode = failed === 0 ? 0 : 1;
