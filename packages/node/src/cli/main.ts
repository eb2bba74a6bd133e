/**
 * The corridor CLI. Each command lives in its own module and calls core; this file only wires them up.
 */
import { Command, CommanderError } from 'commander';
import { CorridorError } from '@corridor/core';
import * as info from './info.js';
import * as convert from './convert.js';
import * as phantom from './phantom.js';
import * as plan from './plan.js';
import * as carm from './carm.js';
import * as start from './start.js';
import * as verify from './verify.js';
import * as registerCmd from './register.js';
import * as cbct from './cbct.js';
import * as recon from './recon.js';
import * as cement from './cement.js';
import * as report from './report.js';
import * as pacs from './pacs.js';
import * as register2dCmd from './register2d.js';

export function buildProgram(): Command {
  const program = new Command('corridor')
    .description('Corridor: plan and guide percutaneous needle and screw paths on CT/CBCT with C-arm overlay')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  for (const m of [
    info,
    convert,
    phantom,
    plan,
    carm,
    cbct,
    recon,
    verify,
    cement,
    report,
    registerCmd,
    register2dCmd,
    pacs,
    start,
  ])
    m.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CorridorError) {
      // Messages quote header text and file names: no control character reaches the terminal raw.
      console.error(`corridor: ${err.name}: ${info.printable(err.message)}`);
      return 2;
    }
    throw err;
  }
}
