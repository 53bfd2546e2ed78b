// Types for the operations in src/operations, from Shopfront's schema.
// SHOPFRONT_SCHEMA picks the schema: a running server's URL (introspection, dev only) or
// a file; the default is the exported schema.graphql at the repository's root.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: process.env.SHOPFRONT_SCHEMA ?? "../../schema.graphql",
  documents: ["src/operations/*.graphql"],
  generates: {
    [process.env.SHOPFRONT_CODEGEN_OUT ?? "src/generated/graphql.ts"]: {
      plugins: ["typescript-operations", "typed-document-node"],
      config: {
        scalars: { DateTime: "string" },
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false, object: true },
        useTypeImports: true,
        // Each operation as a typed string: what fetch sends, with its types attached.
        documentMode: "string",
      },
    },
  },
  errorsOnly: true,
};

export default config;
