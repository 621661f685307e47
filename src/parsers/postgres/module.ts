/** PostgreSQL (protocol 3) as a protocol module. */
import { databaseModule } from '../db';
import { PG_ERROR } from './codes';
import { detectPostgres, framesAsPostgres } from './detect';
import { PostgresMasker } from './masker';
import { PostgresParser } from './parser';

export const postgresModule = databaseModule({
  name: 'postgres',
  dbSystem: 'postgresql',
  detect: { verdict: detectPostgres, frames: framesAsPostgres },
  parser: () => new PostgresParser(),
  parseErrors: PG_ERROR,
  masking: { client: (connectionStart) => new PostgresMasker(connectionStart) },
});
