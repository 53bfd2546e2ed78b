#!/usr/bin/env node
// Runs the reference GraphQL-over-HTTP audit of the `graphql-http` package
// (`auditServer`) against a running server and prints a JSON summary on stdout.
//
//   node audit.mjs http://127.0.0.1:8000/graphql
//   GRAPHQL_URL=http://127.0.0.1:8000/graphql node audit.mjs
//
// The audit grades every check by the spec's requirement level (RFC 2119):
//   MUST   -> "error"  (not conformant)
//   SHOULD -> "warn"   (a recommendation is not followed)
//   MAY    -> "notice" (an optional behaviour is not implemented)
//
// Exit code: 0 when no result is an "error", 1 when at least one is, 2 when the
// audit could not run at all (bad usage, server unreachable, fatal audit failure).
// Warnings and notices do not change the exit code: whoever runs this decides how
// strict to be. Shopfront's pytest wrapper (test_graphql_http_audit.py) requires zero
// errors AND zero warnings AND zero notices, i.e. every audit "ok".

import { auditServer } from 'graphql-http';

const BODY_PREVIEW = 500;

function usage(message) {
  process.stderr.write(`${message}\nusage: node audit.mjs <graphql-url>  (or GRAPHQL_URL=...)\n`);
  process.exit(2);
}

async function describeResponse(response) {
  // What the server answered, so a failing CI log says why without a re-run.
  if (!response || typeof response.status !== 'number') return undefined;
  let body;
  try {
    body = response.bodyUsed ? '(body already read by the audit)' : await response.text();
  } catch (error) {
    body = `(body unreadable: ${error})`;
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: body.length > BODY_PREVIEW ? `${body.slice(0, BODY_PREVIEW)}...` : body,
  };
}

async function main() {
  const url = process.argv[2] || process.env.GRAPHQL_URL;
  if (!url) usage('no server URL given');
  try {
    new URL(url);
  } catch {
    usage(`not a URL: ${url}`);
  }

  const results = await auditServer({ url, fetchFn: fetch });

  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  const notOk = [];
  for (const result of results) {
    counts[result.status] = (counts[result.status] ?? 0) + 1;
    if (result.status !== 'ok') {
      notOk.push({
        id: result.id,
        name: result.name,
        status: result.status,
        reason: result.reason,
        response: await describeResponse(result.response),
      });
    }
  }
  const summary = {
    url,
    total: results.length,
    ok: counts.ok,
    warn: counts.warn,
    error: counts.error,
    notice: counts.notice,
    notOk,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return counts.error === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`audit could not run: ${error?.stack ?? error}\n`);
    process.exit(2);
  },
);
