import type { RuntimeComponent } from '../runtime';
import { ingestComponent } from './ingest';
import { packagerComponent } from './packager';

/** The parts `opentrail local` runs, in start order. */
export const DEFAULT_COMPONENTS: readonly RuntimeComponent[] = [ingestComponent, packagerComponent];
