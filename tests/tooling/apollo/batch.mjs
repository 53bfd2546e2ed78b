// Apollo Client with BatchHttpLink against a running Shopfront: three operations issued
// together travel as one POST (a JSON array); prints what each resolved to, and how many
// HTTP requests carried them, as JSON.
// Usage: node batch.mjs URL TOKEN SKU
import { ApolloClient, InMemoryCache, gql } from "@apollo/client/core/index.js";
import { BatchHttpLink } from "@apollo/client/link/batch-http/index.js";

const [url, token, sku] = process.argv.slice(2);
let posts = 0;
const countingFetch = (input, init) => {
  posts += 1;
  return fetch(input, init);
};

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new BatchHttpLink({
    uri: url,
    headers: { authorization: `Bearer ${token}` },
    batchMax: 10,
    batchInterval: 20,
    fetch: countingFetch,
  }),
});

const PRODUCT = gql`query BatchProduct($sku: String!) { product(sku: $sku) { sku stockAvailable } }`;
const ME = gql`query BatchMe { me { email orderCount } }`;
const PLACE = gql`mutation BatchPlace($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { status lines { sku quantity } } userErrors { code } }
}`;

const [product, me, placed] = await Promise.all([
  client.query({ query: PRODUCT, variables: { sku }, fetchPolicy: "no-cache" }),
  client.query({ query: ME, fetchPolicy: "no-cache" }),
  client.mutate({
    mutation: PLACE,
    variables: { input: { lines: [{ sku, quantity: 1 }], idempotencyKey: `batch-${Date.now()}` } },
  }),
]);
console.log(
  JSON.stringify({
    posts,
    product: product.data,
    me: me.data,
    placed: placed.data,
  }),
);
