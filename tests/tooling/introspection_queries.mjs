// graphql-js's introspection query as tools send it: the default (graphql-codegen,
// Apollo) and with every option GraphiQL 3 and newer tools turn on. Printed as JSON.
import { getIntrospectionQuery } from "graphql";

const queries = {
  default: getIntrospectionQuery(),
  everything: getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    oneOf: true,
  }),
};
process.stdout.write(JSON.stringify(queries));
