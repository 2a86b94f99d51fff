/**
 * Preloaded with `--import` into a CLI run: records every module the run resolves into the file
 * named by $MAILER_TRACE_IMPORTS, one URL a line, so a test can tell what a command loaded.
 */
import { register } from 'node:module';

register('./import-hook.js', import.meta.url, { data: { file: process.env.MAILER_TRACE_IMPORTS } });
