// Apollo Client with GraphQLWsLink (graphql-ws) following one order, as a frontend's
// order page does: prints each orderStatus message as a JSON line, and exits after COUNT.
// Usage: node subscribe.mjs WS_URL TOKEN ORDER_ID COUNT
import { ApolloClient, InMemoryCache, gql } from "@apollo/client/core/index.js";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions/index.js";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, orderId, count] = process.argv.slice(2);
const wsClient = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});
const client = new ApolloClient({ cache: new InMemoryCache(), link: new GraphQLWsLink(wsClient) });
const FOLLOW = gql`subscription ApolloFollow($orderId: ID!) {
  orderStatus(orderId: $orderId) { event version order { id status } }
}`;

let seen = 0;
const subscription = client.subscribe({ query: FOLLOW, variables: { orderId } }).subscribe({
  next: ({ data, error }) => {
    if (error) {
      console.log(JSON.stringify({ error: error.message }));
      process.exit(1);
    }
    console.log(JSON.stringify(data.orderStatus));
    seen += 1;
    if (seen >= Number(count)) {
      subscription.unsubscribe();
      wsClient.dispose();
    }
  },
  error: (error) => {
    console.log(JSON.stringify({ error: String(error?.message ?? error) }));
    process.exit(1);
  },
});
