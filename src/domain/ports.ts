import type { DeliveryFailure } from './catalog.js';

/** What the send queue needs from a way of delivering mail: SMTP, or the outbox folder. */
export interface Transport {
  /** where mail goes, without secrets: `smtp://mail.example.org:587`, `outbox ./outbox` */
  readonly description: string;
  readonly kind: 'smtp' | 'outbox';
  /**
   * Hands one finished message over; resolves with the server's reply, or throws a
   * DeliveryError. `label` names it where a name is needed (the outbox file): the send id.
   */
  deliver(envelope: Envelope, raw: Buffer, label: string): Promise<string>;
  close(): Promise<void>;
}

export interface Envelope {
  from: string;
  to: string[];
}

/** A failed hand-over, with the fields the error catalog reads. */
export class DeliveryError extends Error implements DeliveryFailure {
  readonly code?: string;
  readonly command?: string;
  readonly responseCode?: number;
  readonly response?: string;
  readonly afterMessage?: boolean;

  constructor(failure: DeliveryFailure) {
    super(failure.message);
    this.afterMessage = failure.afterMessage;
    this.code = failure.code;
    this.command = failure.command;
    this.responseCode = failure.responseCode;
    this.response = failure.response;
  }
}
