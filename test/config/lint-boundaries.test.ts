/**
 * The linter's layering rules (eslint.config.js) hold what
 * docs/ARCHITECTURE.md says: each boundary refuses an import across it and
 * lets the allowed ones through. Run on snippets at real paths of the tree.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('the import boundaries', () => {
  it('src/core imports nothing of the project outside it', async () => {
    expect(await problems('src/core/x.ts', "import { openDatabase } from '../storage/database.js';\n")).toEqual([expect.stringContaining('src/core imports nothing')]);
    expect(await problems('src/core/auth/x.ts', "import { MatrixError } from '../../matrix-error.js';\n")).toEqual([expect.stringContaining('src/core imports nothing')]);
    expect(await problems('src/core/auth/x.ts', "import type { PDU } from '../pdu.js';\n")).toEqual([]);
    expect(await problems('src/core/x.ts', "import { createHash } from 'node:crypto';\nimport { b } from './base64.js';\n")).toEqual([]);
  });

  it('src/storage imports only storage, config types, core, start-up errors and the migrations', async () => {
    expect(await problems('src/storage/x.ts', "import { RoomService } from '../services/rooms/room-service.js';\n")).toEqual([expect.stringContaining('src/storage imports only')]);
    expect(await problems('src/storage/x.ts', "import { loadConfig } from '../config/load.js';\n")).toEqual([expect.stringContaining('src/storage imports only')]);
    expect(await problems('src/storage/x.ts', "import { logger } from '../logger.js';\n")).toEqual([expect.stringContaining('src/storage imports only')]);
    const allowed = [
      "import type { DatabaseConfig } from '../config/types.js';",
      "import type { PDU } from '../core/pdu.js';",
      "import { StartupError } from '../startup-error.js';",
      "import { MIGRATIONS } from '../../migrations/index.js';",
      "import type { Db } from './db.js';",
    ];
    expect(await problems('src/storage/x.ts', `${allowed.join('\n')}\n`)).toEqual([]);
  });

  it('src/services never import src/http, and write no SQL', async () => {
    expect(await problems('src/services/x.ts', "import { jsonObjectBody } from '../http/json-body.js';\n")).toEqual([expect.stringContaining('never import src/http')]);
    expect(await problems('src/services/rooms/x.ts', "import type { PluginOptions } from '../../http/context.js';\n")).toEqual([expect.stringContaining('never import src/http')]);
    expect(await problems('src/services/rooms/x.ts', "import { sql } from 'kysely';\n")).toEqual([expect.stringContaining('SQL only under src/storage')]);
    expect(await problems('src/services/rooms/x.ts', "import type { Kysely } from 'kysely';\nimport { getEvent } from '../../storage/events.js';\n")).toEqual([]);
  });

  it('src/http writes no SQL, and the server logs through pino, not the console', async () => {
    expect(await problems('src/http/client/x.ts', "import { sql } from 'kysely';\n")).toEqual([expect.stringContaining('SQL only under src/storage')]);
    expect(await problems('src/services/x.ts', "console.log('hello');\n")).toEqual([expect.stringContaining('no-console')]);
    expect(await problems('src/cli/x.ts', "console.log('usage: …');\n")).toEqual([]);
  });

  it('src/http takes only types from src/storage: a handler calls a service', async () => {
    expect(await problems('src/http/client/profile.ts', "import { getProfile } from '../../storage/users.js';\n")).toEqual([expect.stringContaining('only types from src/storage')]);
    expect(await problems('src/http/app.ts', "import { openDatabase } from '../storage/database.js';\n")).toEqual([expect.stringContaining('only types from src/storage')]);
    expect(await problems('src/http/admin/media.ts', "import { sql } from 'kysely';\n")).toEqual([expect.stringContaining('SQL only under src/storage')]);
    expect(await problems('src/http/client/profile.ts', "import type { ProfileField } from '../../storage/profiles.js';\n")).toEqual([]);
  });
});
