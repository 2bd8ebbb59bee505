import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

/** VENDORED_PROTO_FILES are the entry points of the vendored protocol definitions. */
export const VENDORED_PROTO_FILES = [
  'opentelemetry/proto/collector/trace/v1/trace_service.proto',
  'google/rpc/status.proto',
] as const;

/** loadVendoredProtos parses the vendored .proto files into a resolved protobufjs root. */
export function loadVendoredProtos(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => `${PROTO_DIR}${target}`;
  root.loadSync([...VENDORED_PROTO_FILES], { keepCase: false });
  root.resolveAll();
  return root;
}
