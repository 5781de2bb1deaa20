import type { RuntimeComponent } from '../runtime-context';
import { digestComponent } from './digest';
import { fanoutComponent } from './fanout';
import { historyComponent } from './history';
import { ingestComponent } from './ingest';
import { insightsComponent } from './insights';
import { packagerComponent } from './packager';

/** The parts `opentrail local` runs, in start order. */
export const DEFAULT_COMPONENTS: readonly RuntimeComponent[] = [
  ingestComponent,
  packagerComponent,
  digestComponent,
  historyComponent,
  fanoutComponent,
  insightsComponent,
];
