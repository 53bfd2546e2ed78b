// A typed Shopfront client in a few lines: every call's variables and result are the
// types graphql-codegen generated from the schema and src/operations, so a schema change
// that breaks a screen fails `tsc --noEmit`.
import {
  CatalogDocument,
  type CatalogQueryVariables,
  MyOrdersDocument,
  type MyOrdersQueryVariables,
  OrderDetailDocument,
  type OrderDetailQueryVariables,
  PayOrderDocument,
  type PayOrderMutationVariables,
  PlaceOrderDocument,
  type PlaceOrderMutationVariables,
  type TypedDocumentString,
} from "./generated/graphql.js";

export interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string };
}

export class ShopfrontError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Shopfront {
  private consistency: string | null = null;

  constructor(
    private readonly url: string,
    private readonly token: string | null = null,
  ) {}

  async request<TData, TVariables>(
    document: TypedDocumentString<TData, TVariables>,
    variables: TVariables,
  ): Promise<TData> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    // Read your own writes: queries after a mutation wait for the read models to hold it.
    if (this.consistency) headers["shopfront-consistency"] = this.consistency;
    const response = await fetch(this.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ query: document.toString(), variables }),
    });
    const body = (await response.json()) as { data?: TData; errors?: GraphQLErrorBody[] };
    const first = body.errors?.[0];
    if (first) throw new ShopfrontError(first.extensions?.code ?? "UNKNOWN", first.message);
    if (body.data === undefined) throw new ShopfrontError("NO_DATA", `HTTP ${response.status}`);
    return body.data;
  }

  catalog(variables: CatalogQueryVariables = {}) {
    return this.request(CatalogDocument, variables);
  }

  myOrders(variables: MyOrdersQueryVariables = {}) {
    return this.request(MyOrdersDocument, variables);
  }

  order(variables: OrderDetailQueryVariables) {
    return this.request(OrderDetailDocument, variables);
  }

  async placeOrder(variables: PlaceOrderMutationVariables) {
    const data = await this.request(PlaceOrderDocument, variables);
    this.consistency = data.placeOrder.consistencyToken ?? this.consistency;
    return data;
  }

  payOrder(variables: PayOrderMutationVariables) {
    return this.request(PayOrderDocument, variables);
  }
}

// What a screen does with the types: no casts, every field checked.
export async function buyFirstInStock(shop: Shopfront): Promise<string | null> {
  const { products } = await shop.catalog({ first: 10, inStock: true });
  const product = products.edges[0]?.node;
  if (!product) return null;
  const { placeOrder } = await shop.placeOrder({
    input: { lines: [{ sku: product.sku, quantity: 1 }], idempotencyKey: crypto.randomUUID() },
  });
  const problem = placeOrder.userErrors[0];
  if (problem) throw new ShopfrontError(problem.code, problem.message);
  const order = placeOrder.order;
  if (!order) return null;
  const total: number = order.totalCents;
  const steps: string[] = order.timeline.map((step) => `${step.status} at ${step.at}`);
  console.log(`${order.status}: ${total} ${order.currency}; ${steps.join(", ")}`);
  return order.id;
}
