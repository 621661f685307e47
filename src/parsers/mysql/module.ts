/** MySQL (and MariaDB) as a protocol module. */
import { databaseModule } from '../db';
import { MYSQL_ERROR } from './codes';
import { detectMysql } from './detect';
import { MysqlGreetingReader, MysqlMasker } from './masker';
import { MysqlParser } from './parser';

export const mysqlModule = databaseModule({
  name: 'mysql',
  dbSystem: 'mysql',
  detect: { verdict: detectMysql },
  parser: () => new MysqlParser(),
  parseErrors: MYSQL_ERROR,
  masking: { client: (_start, notes) => new MysqlMasker(false, false, notes), server: (notes) => new MysqlGreetingReader(notes) },
});
