/** TLS, named only: its plaintext comes from the TLS probes, and its records are not read. */
import type { ProtocolModule } from '../module';
import { detectTls } from './detect';

export const tlsModule = {
  name: 'tls',
  family: 'tls',
  detect: { verdict: detectTls },
} as const satisfies ProtocolModule;
