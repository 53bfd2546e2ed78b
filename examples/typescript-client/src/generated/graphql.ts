/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type CancelOrderInput = {
  /** Refuse (userError VERSION_CONFLICT) unless the order is still at this version. */
  expectedVersion?: number | null | undefined;
  orderId: string | number;
  reason?: string | null | undefined;
};

export type OrderLineInput = {
  quantity: number;
  sku: string;
};

export type OrderStatus =
  | 'CANCELLED'
  | 'DELIVERED'
  | 'PAID'
  | 'PLACED'
  | 'SHIPPED';

export type PayOrderInput = {
  /** Refuse (userError VERSION_CONFLICT) unless the order is still at this version. */
  expectedVersion?: number | null | undefined;
  orderId: string | number;
};

export type PlaceOrderInput = {
  idempotencyKey?: string | null | undefined;
  lines: Array<OrderLineInput>;
};

export type RegisterCustomerInput = {
  email: string;
  name: string;
};

export type ShipOrderInput = {
  carrier: string;
  /** Refuse (userError VERSION_CONFLICT) unless the order is still at this version. */
  expectedVersion?: number | null | undefined;
  orderId: string | number;
  trackingNumber: string;
};

export type CatalogQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
  search?: string | null | undefined;
  inStock?: boolean | null | undefined;
}>;


export type CatalogQuery = { products: { edges: Array<{ cursor: string, node: { id: string, sku: string, name: string, description: string | null, priceCents: number, currency: string, stockAvailable: number, inStock: boolean } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type ProductQueryVariables = Exact<{
  sku: string;
}>;


export type ProductQuery = { product: { id: string, sku: string, name: string, priceCents: number, currency: string, stockAvailable: number } | null };

export type MeQueryVariables = Exact<{ [key: string]: never; }>;


export type MeQuery = { me: { id: string, email: string, name: string, orderCount: number, lifetimeSpendCents: number } | null };

export type RegisterCustomerMutationVariables = Exact<{
  input: RegisterCustomerInput;
}>;


export type RegisterCustomerMutation = { registerCustomer: { token: string | null, customer: { id: string, email: string, name: string } | null, userErrors: Array<{ field: string | null, message: string, code: string }> } };

export type OrderSummaryFragment = { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, shipment: { carrier: string, trackingNumber: string, status: string } | null };

export type OrderDetailFragment = { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, lines: Array<{ sku: string, productName: string, quantity: number, unitPriceCents: number, lineTotalCents: number }>, payment: { status: string, amountCents: number, paidAt: string | null, refundedAt: string | null } | null, timeline: Array<{ status: OrderStatus, at: string }>, shipment: { carrier: string, trackingNumber: string, status: string } | null };

export type MyOrdersQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
  status?: OrderStatus | null | undefined;
}>;


export type MyOrdersQuery = { myOrders: { edges: Array<{ cursor: string, node: { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, shipment: { carrier: string, trackingNumber: string, status: string } | null } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type OrderDetailQueryVariables = Exact<{
  id: string | number;
}>;


export type OrderDetailQuery = { order: { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, lines: Array<{ sku: string, productName: string, quantity: number, unitPriceCents: number, lineTotalCents: number }>, payment: { status: string, amountCents: number, paidAt: string | null, refundedAt: string | null } | null, timeline: Array<{ status: OrderStatus, at: string }>, shipment: { carrier: string, trackingNumber: string, status: string } | null } | null };

export type PlaceOrderMutationVariables = Exact<{
  input: PlaceOrderInput;
}>;


export type PlaceOrderMutation = { placeOrder: { consistencyToken: string | null, order: { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, lines: Array<{ sku: string, productName: string, quantity: number, unitPriceCents: number, lineTotalCents: number }>, payment: { status: string, amountCents: number, paidAt: string | null, refundedAt: string | null } | null, timeline: Array<{ status: OrderStatus, at: string }>, shipment: { carrier: string, trackingNumber: string, status: string } | null } | null, userErrors: Array<{ field: string | null, message: string, code: string }> } };

export type PayOrderMutationVariables = Exact<{
  input: PayOrderInput;
}>;


export type PayOrderMutation = { payOrder: { order: { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, lines: Array<{ sku: string, productName: string, quantity: number, unitPriceCents: number, lineTotalCents: number }>, payment: { status: string, amountCents: number, paidAt: string | null, refundedAt: string | null } | null, timeline: Array<{ status: OrderStatus, at: string }>, shipment: { carrier: string, trackingNumber: string, status: string } | null } | null, userErrors: Array<{ field: string | null, message: string, code: string }> } };

export type CancelOrderMutationVariables = Exact<{
  input: CancelOrderInput;
}>;


export type CancelOrderMutation = { cancelOrder: { order: { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, shipment: { carrier: string, trackingNumber: string, status: string } | null } | null, userErrors: Array<{ field: string | null, message: string, code: string }> } };

export type OrderStatusSubscriptionVariables = Exact<{
  orderId: string | number;
  afterVersion?: number | null | undefined;
}>;


export type OrderStatusSubscription = { orderStatus: { event: string, version: number, occurredAt: string, order: { id: string, status: OrderStatus, placedAt: string, updatedAt: string, version: number, itemCount: number, totalCents: number, currency: string, lines: Array<{ sku: string, productName: string, quantity: number, unitPriceCents: number, lineTotalCents: number }>, payment: { status: string, amountCents: number, paidAt: string | null, refundedAt: string | null } | null, timeline: Array<{ status: OrderStatus, at: string }>, shipment: { carrier: string, trackingNumber: string, status: string } | null } } };

export type SalesDashboardQueryVariables = Exact<{ [key: string]: never; }>;


export type SalesDashboardQuery = { salesDashboard: { orderCount: number, revenueCents: number, ordersByStatus: Array<{ status: OrderStatus, count: number }>, topProducts: Array<{ sku: string, name: string, unitsSold: number, revenueCents: number }> } };

export type FulfillmentQueueQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type FulfillmentQueueQuery = { fulfillmentQueue: { edges: Array<{ cursor: string, node: { id: string, placedAt: string, totalCents: number, currency: string, itemCount: number } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type ShipOrderMutationVariables = Exact<{
  input: ShipOrderInput;
}>;


export type ShipOrderMutation = { shipOrder: { order: { id: string, status: OrderStatus, shipment: { carrier: string, trackingNumber: string, status: string, shippedAt: string | null } | null } | null, userErrors: Array<{ field: string | null, message: string, code: string }> } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const OrderSummaryFragmentDoc = new TypedDocumentString(`
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}
    `, {"fragmentName":"OrderSummary"}) as unknown as TypedDocumentString<OrderSummaryFragment, unknown>;
export const OrderDetailFragmentDoc = new TypedDocumentString(`
    fragment OrderDetail on Order {
  ...OrderSummary
  lines {
    sku
    productName
    quantity
    unitPriceCents
    lineTotalCents
  }
  payment {
    status
    amountCents
    paidAt
    refundedAt
  }
  timeline {
    status
    at
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}`, {"fragmentName":"OrderDetail"}) as unknown as TypedDocumentString<OrderDetailFragment, unknown>;
export const CatalogDocument = new TypedDocumentString(`
    query Catalog($first: Int = 20, $after: String, $search: String, $inStock: Boolean) {
  products(first: $first, after: $after, search: $search, inStock: $inStock) {
    edges {
      cursor
      node {
        id
        sku
        name
        description
        priceCents
        currency
        stockAvailable
        inStock
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `) as unknown as TypedDocumentString<CatalogQuery, CatalogQueryVariables>;
export const ProductDocument = new TypedDocumentString(`
    query Product($sku: String!) {
  product(sku: $sku) {
    id
    sku
    name
    priceCents
    currency
    stockAvailable
  }
}
    `) as unknown as TypedDocumentString<ProductQuery, ProductQueryVariables>;
export const MeDocument = new TypedDocumentString(`
    query Me {
  me {
    id
    email
    name
    orderCount
    lifetimeSpendCents
  }
}
    `) as unknown as TypedDocumentString<MeQuery, MeQueryVariables>;
export const RegisterCustomerDocument = new TypedDocumentString(`
    mutation RegisterCustomer($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) {
    customer {
      id
      email
      name
    }
    token
    userErrors {
      field
      message
      code
    }
  }
}
    `) as unknown as TypedDocumentString<RegisterCustomerMutation, RegisterCustomerMutationVariables>;
export const MyOrdersDocument = new TypedDocumentString(`
    query MyOrders($first: Int = 20, $after: String, $status: OrderStatus) {
  myOrders(first: $first, after: $after, status: $status) {
    edges {
      cursor
      node {
        ...OrderSummary
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}`) as unknown as TypedDocumentString<MyOrdersQuery, MyOrdersQueryVariables>;
export const OrderDetailDocument = new TypedDocumentString(`
    query OrderDetail($id: ID!) {
  order(id: $id) {
    ...OrderDetail
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}
fragment OrderDetail on Order {
  ...OrderSummary
  lines {
    sku
    productName
    quantity
    unitPriceCents
    lineTotalCents
  }
  payment {
    status
    amountCents
    paidAt
    refundedAt
  }
  timeline {
    status
    at
  }
}`) as unknown as TypedDocumentString<OrderDetailQuery, OrderDetailQueryVariables>;
export const PlaceOrderDocument = new TypedDocumentString(`
    mutation PlaceOrder($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order {
      ...OrderDetail
    }
    userErrors {
      field
      message
      code
    }
    consistencyToken
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}
fragment OrderDetail on Order {
  ...OrderSummary
  lines {
    sku
    productName
    quantity
    unitPriceCents
    lineTotalCents
  }
  payment {
    status
    amountCents
    paidAt
    refundedAt
  }
  timeline {
    status
    at
  }
}`) as unknown as TypedDocumentString<PlaceOrderMutation, PlaceOrderMutationVariables>;
export const PayOrderDocument = new TypedDocumentString(`
    mutation PayOrder($input: PayOrderInput!) {
  payOrder(input: $input) {
    order {
      ...OrderDetail
    }
    userErrors {
      field
      message
      code
    }
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}
fragment OrderDetail on Order {
  ...OrderSummary
  lines {
    sku
    productName
    quantity
    unitPriceCents
    lineTotalCents
  }
  payment {
    status
    amountCents
    paidAt
    refundedAt
  }
  timeline {
    status
    at
  }
}`) as unknown as TypedDocumentString<PayOrderMutation, PayOrderMutationVariables>;
export const CancelOrderDocument = new TypedDocumentString(`
    mutation CancelOrder($input: CancelOrderInput!) {
  cancelOrder(input: $input) {
    order {
      ...OrderSummary
    }
    userErrors {
      field
      message
      code
    }
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}`) as unknown as TypedDocumentString<CancelOrderMutation, CancelOrderMutationVariables>;
export const OrderStatusDocument = new TypedDocumentString(`
    subscription OrderStatus($orderId: ID!, $afterVersion: Int) {
  orderStatus(orderId: $orderId, afterVersion: $afterVersion) {
    event
    version
    occurredAt
    order {
      ...OrderDetail
    }
  }
}
    fragment OrderSummary on Order {
  id
  status
  placedAt
  updatedAt
  version
  itemCount
  totalCents
  currency
  shipment {
    carrier
    trackingNumber
    status
  }
}
fragment OrderDetail on Order {
  ...OrderSummary
  lines {
    sku
    productName
    quantity
    unitPriceCents
    lineTotalCents
  }
  payment {
    status
    amountCents
    paidAt
    refundedAt
  }
  timeline {
    status
    at
  }
}`) as unknown as TypedDocumentString<OrderStatusSubscription, OrderStatusSubscriptionVariables>;
export const SalesDashboardDocument = new TypedDocumentString(`
    query SalesDashboard {
  salesDashboard {
    orderCount
    revenueCents
    ordersByStatus {
      status
      count
    }
    topProducts {
      sku
      name
      unitsSold
      revenueCents
    }
  }
}
    `) as unknown as TypedDocumentString<SalesDashboardQuery, SalesDashboardQueryVariables>;
export const FulfillmentQueueDocument = new TypedDocumentString(`
    query FulfillmentQueue($first: Int = 50, $after: String) {
  fulfillmentQueue(first: $first, after: $after) {
    edges {
      cursor
      node {
        id
        placedAt
        totalCents
        currency
        itemCount
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `) as unknown as TypedDocumentString<FulfillmentQueueQuery, FulfillmentQueueQueryVariables>;
export const ShipOrderDocument = new TypedDocumentString(`
    mutation ShipOrder($input: ShipOrderInput!) {
  shipOrder(input: $input) {
    order {
      id
      status
      shipment {
        carrier
        trackingNumber
        status
        shippedAt
      }
    }
    userErrors {
      field
      message
      code
    }
  }
}
    `) as unknown as TypedDocumentString<ShipOrderMutation, ShipOrderMutationVariables>;