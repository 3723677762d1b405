// THE registry: every check, in order. Nothing is discovered at run time.
import type { Check } from '../check.ts';
import { helo } from './helo/helo.ts';
import { sender } from './sender/sender.ts';
import { headers } from './headers/headers.ts';
import { size } from './size/size.ts';
import { transfer } from './transfer/transfer.ts';
import { auth } from './auth/auth.ts';
import { bayes } from './bayes/bayes.ts';
import { mime } from './mime/mime.ts';
import { attachments } from './attachments/attachments.ts';
import { urls } from './urls/urls.ts';
import { content } from './content/content.ts';
import { business } from './business/business.ts';

export const CHECKS: readonly Check[] = [helo, sender, headers, size, transfer, auth, bayes, mime, attachments, urls, content, business];
