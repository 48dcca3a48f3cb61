// The official Apify JavaScript client (npm apify-client) as the peer of the extension in
// `make bench`: creates one webhook per line of a JSON-lines file with
// client.webhooks().create(body), at most --concurrency requests in flight, and prints one line
// of JSON with what happened and how long the creating took.
//
//   node tests/bench/js_client.mjs --bodies FILE --concurrency 8 \
//        [--base-url http://127.0.0.1:PORT] [--token test-token]
//
// FILE holds one WebhookCreate object per line: tests/bench/bench.py writes there exactly the
// bodies the extension sends (taken from apify_dry_run), idempotencyKey included, so both
// clients send the same requests. The client keeps its defaults (8 retries of 429, 5xx and
// network errors, 500 ms first backoff, 360 s timeout): this measures the client as shipped.
//
// apify-client is installed in tests/js (npm ci --no-audit --no-fund), not beside this file, so
// it is loaded through a require() rooted there.
//
// Output (stdout, one line): {"n", "concurrency", "created", "failed", "errors" (up to 5
// messages), "elapsedMs" (first create() called to last one settled), "cpuUserUs", "cpuSysUs"
// (process.cpuUsage() over the same span), "startupMs" (process start to first create()),
// "vmHwmKb" (this process's peak resident set since it started, VmHWM of /proc/self/status; null
// where there is no /proc)}.
// Exit status 0 when every webhook was created, 1 otherwise, 2 on bad arguments.
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
        'base-url': { type: 'string', default: process.env.APIFY_API_BASE_URL },
        token: { type: 'string', default: process.env.APIFY_TOKEN },
    },
    strict: true,
});

const concurrency = Number.parseInt(args.concurrency, 10);
if (!args.bodies) usage('--bodies FILE is required');
if (!Number.isInteger(concurrency) || concurrency < 1) usage(`bad --concurrency ${args.concurrency}`);
if (!args['base-url']) usage('no base URL: pass --base-url or set APIFY_API_BASE_URL');
if (!args.token) usage('no token: pass --token or set APIFY_TOKEN');

const requireFromJs = createRequire(new URL('../js/package.json', import.meta.url));
const { ApifyClient } = requireFromJs('apify-client');

const bodies = readFileSync(args.bodies, 'utf8').split('\n').filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));

const client = new ApifyClient({ token: args.token, baseUrl: args['base-url'] });
const webhooks = client.webhooks();

let next = 0;
let created = 0;
let failed = 0;
const errors = [];

// One of `concurrency` workers: takes the next body until none is left, one request at a time.
async function worker() {
    while (next < bodies.length) {
        const body = bodies[next];
        next += 1;
        try {
            const webhook = await webhooks.create(body);
            if (webhook && typeof webhook.id === 'string') {
                created += 1;
            } else {
                failed += 1;
                if (errors.length < 5) errors.push(`no id in ${JSON.stringify(webhook).slice(0, 200)}`);
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
    concurrency,
    created,
    failed,
    errors,
    elapsedMs,
    cpuUserUs: cpu.user,
    cpuSysUs: cpu.system,
    startupMs,
    vmHwmKb,
})}\n`);
process.exitCode = failed === 0 ? 0 : 1;
