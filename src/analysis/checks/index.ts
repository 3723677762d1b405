// THE registry: every check, in order. Nothing is discovered at run time.
import type { Check } from '../check.ts';
import { helo } from './helo/helo.ts';
import { sender } from './sender/sender.ts';
import { headers } from './headers/headers.ts';
import { size } from './size/size.ts';
import { transfer } from './transfer/transfer.ts';

export const CHECKS: readonly Check[] = [helo, sender, headers, size, transfer];
