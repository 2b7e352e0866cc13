/**
 * The process logger. Secrets never reach a log line: access tokens are
 * scrubbed from logged URLs, and request headers are not logged at all.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

const SECRET_QUERY = /([?&](?:access_token|token|password|secret)=)[^&#]*/gi;

/** A URL as it may be logged: secret query parameters replaced. */
export function scrubUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1<redacted>');
}

interface LoggableRequest {
  method?: string;
  url?: string;
  ip?: string;
  headers?: Record<string, string | string[] | undefined>;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'axon' },
      serializers: {
        req: (req: LoggableRequest) => ({
          method: req.method,
          url: scrubUrl(req.url ?? ''),
          remoteAddress: req.ip,
          userAgent: req.headers?.['user-agent'],
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
      redact: { paths: ['password', '*.password', 'access_token', '*.access_token', 'new_password', 'auth.password'], censor: '<redacted>' },
    },
    destination,
  );
}
