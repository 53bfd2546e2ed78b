// graphql-ws's own client (with the `ws` package as its WebSocket) runs one query
// against a Shopfront server with the given connectionParams, and prints as JSON how it
// ended: completed, or the close event it gave up on (code, reason), how long that took
// and how many connections it opened. It gives up waiting after 5 s (`settled: false`).
//
//   node connect.mjs ws://127.0.0.1:PORT/graphql '{"Authorization": "Bearer ..."}'
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, params] = process.argv.slice(2);
const WAIT_MS = 5000;
const started = performance.now();
let connects = 0;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: JSON.parse(params),
  retryAttempts: 5, // as Apollo's GraphQLWsLink would retry
  on: { connecting: () => { connects += 1; } },
});

const outcome = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve({ settled: false }), WAIT_MS);
  const done = (result) => { clearTimeout(timer); resolve({ settled: true, ...result }); };
  client.subscribe({ query: "{ __typename }" }, {
    next: () => {},
    error: (error) => done({ code: error?.code ?? null, reason: error?.reason ?? String(error) }),
    complete: () => done({ completed: true }),
  });
});
outcome.elapsedMs = performance.now() - started;
outcome.connects = connects;
console.log(JSON.stringify(outcome));
await client.dispose();
process.exit(0);
