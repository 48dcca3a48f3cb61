// A webhook's whole life through the official Apify JavaScript client (npm apify-client):
// create, get, update, list, test, the dispatch lists, delete, then get and delete again (both
// must see "not found" without throwing). Prints one JSON object on stdout with what each call
// returned (dates as ISO strings), for tests/test_emulator.py to compare with the emulator.
//
//   node tests/js/webhook_life.mjs --base-url http://127.0.0.1:PORT --token test-token \
//        --request-url http://127.0.0.1:RECEIVER/hook --actor-id HDSasDasz78YcAPEB
//
// --base-url and --token default to $APIFY_API_BASE_URL and $APIFY_TOKEN. Exits non-zero
// (message on stderr) on any error or on an answer of the wrong shape.
import { parseArgs } from 'node:util';
import { ApifyClient } from 'apify-client';

function fail(message) {
    process.stderr.write(`webhook_life: ${message}\n`);
    process.exit(1);
}

const { values: args } = parseArgs({
    options: {
        'base-url': { type: 'string', default: process.env.APIFY_API_BASE_URL },
        token: { type: 'string', default: process.env.APIFY_TOKEN },
        'request-url': { type: 'string', default: 'https://example.com/hook' },
        'actor-id': { type: 'string', default: 'HDSasDasz78YcAPEB' },
        'idempotency-key': { type: 'string', default: 'js-life-key' },
        'max-retries': { type: 'string', default: '8' },
    },
    strict: true,
});

if (!args['base-url']) fail('no base URL: pass --base-url or set APIFY_API_BASE_URL');
if (!args.token) fail('no token: pass --token or set APIFY_TOKEN');

const client = new ApifyClient({
    token: args.token,
    baseUrl: args['base-url'],
    maxRetries: Number(args['max-retries']),
    minDelayBetweenRetriesMillis: 50,
    timeoutSecs: 30,
});

function check(condition, what, value) {
    if (!condition) fail(`${what}: ${JSON.stringify(value)}`);
}

try {
    const created = await client.webhooks().create({
        requestUrl: args['request-url'],
        eventTypes: ['ACTOR.RUN.SUCCEEDED'],
        condition: { actorId: args['actor-id'] },
        idempotencyKey: args['idempotency-key'],
        description: 'made by apify-client',
    });
    check(created && typeof created.id === 'string', 'create returned no webhook id', created);
    const webhook = client.webhook(created.id);

    const fetched = await webhook.get();
    check(fetched && fetched.id === created.id, `get(${created.id}) returned`, fetched);
    check(fetched.createdAt instanceof Date, 'createdAt did not parse as a date', fetched.createdAt);

    const updated = await webhook.update({
        description: 'updated by apify-client',
        eventTypes: ['ACTOR.RUN.SUCCEEDED', 'ACTOR.RUN.FAILED'],
        payloadTemplate: '{"run": {{resource.id}}}',
    });
    check(updated && updated.id === created.id, 'update returned', updated);
    check(updated.modifiedAt instanceof Date, 'modifiedAt did not parse as a date', updated.modifiedAt);

    const list = await client.webhooks().list({ desc: true, limit: 10 });
    check(Array.isArray(list.items) && list.items.some((w) => w.id === created.id),
        `list() does not contain ${created.id}`, list);

    const dispatch = await webhook.test();
    check(dispatch && dispatch.webhookId === created.id, 'test returned', dispatch);
    const dispatches = await webhook.dispatches().list();
    check(dispatches.items.length === 1 && dispatches.items[0].id === dispatch.id,
        'dispatches().list() returned', dispatches);
    const allDispatches = await client.webhookDispatches().list({ desc: true });
    const oneDispatch = await client.webhookDispatch(dispatch.id).get();
    check(oneDispatch && oneDispatch.id === dispatch.id, 'webhookDispatch().get() returned', oneDispatch);

    await webhook.delete();
    const afterDelete = await webhook.get();
    await webhook.delete();   // a second delete finds nothing: the client must not throw
    const listAfter = await client.webhooks().list();

    process.stdout.write(`${JSON.stringify({
        created, fetched, updated, list, dispatch, dispatches, allDispatches,
        afterDelete: afterDelete === undefined ? null : afterDelete, listAfter,
    })}\n`);
} catch (err) {
    const detail = err.statusCode ? ` (HTTP ${err.statusCode} ${err.type})` : '';
    fail(`${err.message}${detail}`);
}
