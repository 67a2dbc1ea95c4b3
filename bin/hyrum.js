#!/usr/bin/env node
// The hyrum command: registers tsx so that Hyrum and scenario files run as TypeScript, no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
