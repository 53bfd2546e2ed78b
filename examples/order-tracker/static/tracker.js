// Shopfront's live order tracker: plain JavaScript, graphql-ws's browser build, and the
// app's own /graphql endpoint. Queries and mutations go over HTTP; the order on screen
// comes only from the orderStatus subscription, so every change you see was pushed.
const { createClient } = globalThis.graphqlWs;

const endpoint = new URL("/graphql", location.href);
const $ = (id) => document.getElementById(id);

const PRODUCTS = `query TrackerProducts { products(first: 50, inStock: true) {
  edges { node { sku name priceCents currency stockAvailable } } } }`;
const ORDER_FIELDS = `id status version totalCents currency
  timeline { status at } shipment { carrier trackingNumber status }`;
const PLACE = `mutation TrackerPlace($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id } userErrors { code message } } }`;
const STEPS = {
  pay: `mutation TrackerPay($input: PayOrderInput!) { payOrder(input: $input) { userErrors { code message } } }`,
  ship: `mutation TrackerShip($input: ShipOrderInput!) { shipOrder(input: $input) { userErrors { code message } } }`,
  deliver: `mutation TrackerDeliver($input: DeliverOrderInput!) { deliverOrder(input: $input) { userErrors { code message } } }`,
  cancel: `mutation TrackerCancel($input: CancelOrderInput!) { cancelOrder(input: $input) { userErrors { code message } } }`,
};
const FOLLOW = `subscription TrackerFollow($orderId: ID!) {
  orderStatus(orderId: $orderId) { event version occurredAt order { ${ORDER_FIELDS} } } }`;
// Which buttons make sense in which status.
const ALLOWED = {
  pay: ["PLACED"],
  ship: ["PAID"],
  deliver: ["SHIPPED"],
  cancel: ["PLACED", "PAID"],
};

let subscription = null;
let client = null;
let current = null;

function say(text) {
  $("message").textContent = text;
}

function money(cents, currency) {
  return `${(cents / 100).toFixed(2)} ${currency}`;
}

async function graphql(query, variables, token) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

function firstUserError(payload) {
  const problem = payload.userErrors[0];
  return problem ? `${problem.code}: ${problem.message}` : null;
}

async function loadProducts() {
  const data = await graphql(PRODUCTS, {}, null);
  const select = $("product");
  select.replaceChildren(
    ...data.products.edges.map(({ node }) => {
      const option = document.createElement("option");
      option.value = node.sku;
      option.textContent = `${node.name} (${money(node.priceCents, node.currency)}, ${node.stockAvailable} left)`;
      return option;
    }),
  );
}

function render(change) {
  const order = change.order;
  if (current && change.version < current.version) return; // an older change: keep the newer
  current = order;
  $("tracking").hidden = false;
  $("order-id").textContent = order.id;
  $("status").textContent = order.status;
  $("status").dataset.status = order.status;
  $("total").textContent = money(order.totalCents, order.currency);
  $("timeline").replaceChildren(
    ...order.timeline.map((step) => {
      const item = document.createElement("li");
      item.dataset.status = step.status;
      item.textContent = `${step.status} at ${new Date(step.at).toLocaleTimeString()}`;
      return item;
    }),
  );
  for (const [action, statuses] of Object.entries(ALLOWED)) {
    $(action).disabled = !statuses.includes(order.status);
  }
}

function follow(orderId, token) {
  subscription?.();
  client?.dispose();
  client = createClient({
    url: endpoint.href.replace(/^http/, "ws"),
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 5,
    on: {
      connected: () => ($("connection").textContent = "live"),
      closed: () => ($("connection").textContent = "reconnecting…"),
    },
  });
  subscription = client.subscribe(
    { query: FOLLOW, variables: { orderId } },
    {
      next: (message) => {
        if (message.errors?.length) say(message.errors[0].message);
        else render(message.data.orderStatus);
      },
      error: (error) => say(error.reason || error.message || String(error)),
      complete: () => ($("connection").textContent = "done"),
    },
  );
}

async function place() {
  say("");
  const token = $("customer-token").value.trim();
  const input = {
    lines: [{ sku: $("product").value, quantity: Number($("quantity").value) }],
    idempotencyKey: crypto.randomUUID(),
  };
  try {
    const { placeOrder } = await graphql(PLACE, { input }, token);
    const problem = firstUserError(placeOrder);
    if (problem) return say(problem);
    current = null;
    follow(placeOrder.order.id, token);
  } catch (error) {
    say(error.message);
  }
}

async function step(action) {
  say("");
  const staff = action === "ship" || action === "deliver";
  const token = (staff ? $("staff-token") : $("customer-token")).value.trim();
  if (staff && !token) return say("Paste the staff token that `make run` printed to ship or deliver.");
  const input = { orderId: current.id };
  if (action === "ship") Object.assign(input, { carrier: "DHL", trackingNumber: `TRK${Date.now()}` });
  try {
    const data = await graphql(STEPS[action], { input }, token);
    const problem = firstUserError(Object.values(data)[0]);
    if (problem) say(problem);
  } catch (error) {
    say(error.message);
  }
}

const demo = document.querySelector('meta[name="shopfront-demo-token"]')?.content ?? "";
$("customer-token").value = demo.startsWith("__") ? "" : demo;
$("place").addEventListener("click", place);
for (const action of Object.keys(STEPS)) $(action).addEventListener("click", () => step(action));
loadProducts().catch((error) => say(`Could not load the catalog: ${error.message}`));
