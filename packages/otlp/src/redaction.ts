import { ALWAYS_REDACTED_HEADERS, createQueryRedactor, REDACTED } from '@tapwire/telemetry';

/** OtlpRedaction says which attribute values never leave the receiver in clear. */
export interface OtlpRedaction {
  /** Attribute keys whose values become [REDACTED] (exact, case-insensitive), on top of the secret headers. */
  attributeKeys: readonly string[];
  /** Query parameters whose values are redacted inside URL attributes (as the proxy's redaction.queryParams). */
  queryParams: readonly string[];
}

/** AttributeRedactor returns the text to store for one attribute, given its key and its text. */
export type AttributeRedactor = (key: string, text: string) => string;

// Semantic-convention attributes that carry a URL or a request target with its query string.
const URL_KEYS = new Set(['url.full', 'url.original', 'http.url', 'http.target']);
const QUERY_KEYS = new Set(['url.query']);

/** secretHeaderKeys are the attribute keys of the always-redacted headers, on requests and responses. */
export function secretHeaderKeys(): string[] {
  return ALWAYS_REDACTED_HEADERS.flatMap((h) => [`http.request.header.${h}`, `http.response.header.${h}`]);
}

/** createAttributeRedactor precomputes the redaction of attribute values once per configuration. */
export function createAttributeRedactor(config: OtlpRedaction): AttributeRedactor {
  const keys = new Set([...secretHeaderKeys(), ...config.attributeKeys].map((k) => k.toLowerCase()));
  const redactQuery = createQueryRedactor(config.queryParams);

  const redactUrl = (url: string): string => {
    let out = url;
    // userinfo: scheme://user:pass@host — everything between "//" and the last "@" of the authority.
    const scheme = out.indexOf('://');
    if (scheme > 0) {
      const start = scheme + 3;
      let end = out.length;
      for (let i = start; i < out.length; i++) {
        const c = out.charCodeAt(i);
        if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
          end = i;
          break;
        }
      }
      const at = out.lastIndexOf('@', end - 1);
      if (at >= start) out = `${out.slice(0, start)}${REDACTED}${out.slice(at)}`;
    }
    const q = out.indexOf('?');
    if (q !== -1) {
      const hash = out.indexOf('#', q);
      const queryEnd = hash === -1 ? out.length : hash;
      out = `${out.slice(0, q + 1)}${redactQuery(out.slice(q + 1, queryEnd))}${out.slice(queryEnd)}`;
    }
    return out;
  };

  return (key, text) => {
    if (keys.has(key.toLowerCase())) return REDACTED;
    if (URL_KEYS.has(key)) return redactUrl(text);
    if (QUERY_KEYS.has(key))
      return text.startsWith('?') ? `?${redactQuery(text.slice(1))}` : redactQuery(text);
    return text;
  };
}
