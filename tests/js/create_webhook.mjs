// Create one webhook with the official Apify JavaScript client (npm apify-client), then read it
// back with get() and list(), and print the created webhook as JSON on stdout.
//
//   npm ci --prefix tests/js
//   node tests/js/create_webhook.mjs --base-url http://127.0.0.1:PORT --token test-token \
//        --request-url https://example.com/hook --actor-id HDSasDasz78YcAPEB \
//        --idempotency-key my-key [--event-type ACTOR.RUN.SUCCEEDED ...] [--description TEXT]
//
// --base-url and --token default to $APIFY_API_BASE_URL and $APIFY_TOKEN. The base URL is the
// host only: the client appends /v2 itself. Exits non-zero (message on stderr) on any error.
import { parseArgs } from 'node:util';
import { ApifyClient } from 'apify-client';

function fail(message) {
    process.stderr.write(`create_webhook: ${message}\n`);
    process.exit(1);
}

const { values: args } = parseArgs({
    options: {
        'base-url': { type: 'string', default: process.env.APIFY_API_BASE_URL },
        token: { type: 'string', default: process.env.APIFY_TOKEN },
        'request-url': { type: 'string', default: 'https://example.com/hook' },
        'actor-id': { type: 'string' },
        'idempotency-key': { type: 'string' },
        'event-type': { type: 'string', multiple: true, default: ['ACTOR.RUN.SUCCEEDED'] },
        description: { type: 'string' },
        'max-retries': { type: 'string', default: '8' },
    },
    strict: true,
});

if (!args['base-url']) fail('no base URL: pass --base-url or set APIFY_API_BASE_URL');
if (!args.token) fail('no token: pass --token or set APIFY_TOKEN');
if (!args['actor-id']) fail('--actor-id is required');

const client = new ApifyClient({
    token: args.token,
    baseUrl: args['base-url'],
    maxRetries: Number(args['max-retries']),
    minDelayBetweenRetriesMillis: 50,
    timeoutSecs: 30,
});

try {
    const request = {
        requestUrl: args['request-url'],
        eventTypes: args['event-type'],
        condition: { actorId: args['actor-id'] },
    };
    if (args['idempotency-key'] !== undefined) request.idempotencyKey = args['idempotency-key'];
    if (args.description !== undefined) request.description = args.description;

    const created = await client.webhooks().create(request);
    if (!created || typeof created.id !== 'string') fail(`create returned no webhook id: ${JSON.stringify(created)}`);

    // The client turns every *At field into a Date: check that the shapes parsed.
    const fetched = await client.webhook(created.id).get();
    if (!fetched || fetched.id !== created.id) fail(`get(${created.id}) returned ${JSON.stringify(fetched)}`);
    if (!(fetched.createdAt instanceof Date) || Number.isNaN(fetched.createdAt.getTime())) {
        fail(`createdAt did not parse as a date: ${fetched.createdAt}`);
    }
    const list = await client.webhooks().list({ desc: true });
    if (!Array.isArray(list.items) || !list.items.some((w) => w.id === created.id)) {
        fail(`list() does not contain ${created.id}: ${JSON.stringify(list)}`);
    }
    process.stdout.write(`${JSON.stringify(created)}\n`);
} catch (err) {
    const detail = err.statusCode ? ` (HTTP ${err.statusCode} ${err.type})` : '';
    fail(`${err.message}${detail}`);
}
