import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { allCollections } from '../common/all-collections.guard';
import { ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';
import { WebhooksService } from './webhooks.service';
import {
  CreateWebhookInput,
  DeliveriesQuery,
  RotateSecretInput,
  UpdateWebhookInput,
  createWebhookSchema,
  deliveriesQuery,
  deliveryParam,
  rotateSecretSchema,
  updateWebhookSchema,
  webhookPageQuery,
} from './webhooks.schemas';

/*
 * Deliveries carry audit events about any device: reading subscriptions and their logs needs
 * admin.read over all collections, changing them admin.write over all collections.
 */
@ApiTags('webhooks')
@Controller('v1/webhooks')
@UseGuards(allCollections('admin.read'))
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  // The delivery routes come first: "deliveries" is not a webhook id.
  @Get('deliveries/:deliveryId')
  @Requires('admin.read')
  @ApiOperation({
    summary: 'One delivery: its state, the payload it sends and every attempt (status, error, duration, a response excerpt)',
  })
  @ApiReturns(S.webhookDeliveryDetail)
  delivery(@Param(new Zod(deliveryParam, 'path')) p: z.infer<typeof deliveryParam>) {
    return this.webhooks.delivery(p.deliveryId);
  }

  @Post('deliveries/:deliveryId/redrive')
  @HttpCode(202)
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Re-drive a dead or failed delivery: a new cycle of attempts with the same webhook-id and body; others answer 409',
  })
  @ApiReturns(S.webhookDelivery)
  redrive(@Caller() caller: PrincipalFacts, @Param(new Zod(deliveryParam, 'path')) p: z.infer<typeof deliveryParam>) {
    return this.webhooks.redrive(caller, p.deliveryId);
  }

  @Post()
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Subscribe a URL to audit events',
    description:
      'The response carries the signing secret (whsec_…) once; it is stored sealed and never returned again. ' +
      'Event types are audit actions (session.active), prefixes (session.*) or *.',
  })
  @ApiReturns(S.issuedWebhookSecret)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createWebhookSchema)) body: CreateWebhookInput) {
    return this.webhooks.create(caller, body);
  }

  @Get()
  @Requires('admin.read')
  @ApiOperation({ summary: 'List webhook subscriptions (keyset pagination); secrets are never returned' })
  @ApiReturns(S.pageOf(S.webhookView))
  list(@Query(new Zod(webhookPageQuery, 'query')) q: z.infer<typeof webhookPageQuery>) {
    return this.webhooks.list(q);
  }

  @Get(':id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A webhook subscription (without its secret)' })
  @ApiReturns(S.webhookView)
  get(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.webhooks.get(p.id);
  }

  @Patch(':id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Change URL, event types, collection filter, description or enabled' })
  @ApiReturns(S.webhookView)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updateWebhookSchema)) body: UpdateWebhookInput,
  ) {
    return this.webhooks.update(caller, p.id, body);
  }

  @Delete(':id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Delete a webhook subscription and its delivery log' })
  @ApiReturns(S.deletedResult)
  remove(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.webhooks.delete(caller, p.id);
  }

  @Post(':id/secret')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Rotate the signing secret: a new one (returned once) signs every attempt from now on',
    description:
      'The previous secret signs too (a second v1 signature in webhook-signature) for previousValidSeconds (default 86400; 0: it stops at once).',
  })
  @ApiReturns(S.issuedWebhookSecret, { status: 201 })
  rotate(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(rotateSecretSchema)) body: RotateSecretInput,
  ) {
    return this.webhooks.rotate(caller, p.id, body);
  }

  @Post(':id/test')
  @HttpCode(202)
  @Requires('admin.write')
  @ApiOperation({ summary: 'Send a webhook.ping delivery to the subscription (a delivery like any other, in its log)' })
  @ApiReturns(S.webhookDelivery)
  test(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.webhooks.test(caller, p.id);
  }

  @Get(':id/deliveries')
  @Requires('admin.read')
  @ApiOperation({ summary: 'The delivery log of a subscription, oldest first, by status (pending, delivered, failed, dead)' })
  @ApiReturns(S.pageOf(S.webhookDelivery))
  deliveries(@Param(new Zod(idParam, 'path')) p: { id: string }, @Query(new Zod(deliveriesQuery, 'query')) q: DeliveriesQuery) {
    return this.webhooks.deliveries(p.id, q);
  }
}
