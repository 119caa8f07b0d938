import { Body, Controller, Delete, Get, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { TICKET_KINDS, defaultRules } from '@rcflow/tickets';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { allCollections } from '../common/all-collections.guard';
import { TicketIntegrationsService } from './ticket-integrations.service';
import {
  CreateIntegrationInput,
  UpdateIntegrationInput,
  createIntegrationSchema,
  dryRunSchema,
  integrationPageQuery,
  listDeliveriesQuery,
  rotateSecretSchema,
  updateIntegrationSchema,
} from './ticket-integrations.schemas';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

const kindParam = z.strictObject({ kind: z.enum(TICKET_KINDS) });

/*
 * Integrations act across collections (through their principal's grants) and their delivery logs
 * name devices and sessions anywhere: reading them needs admin.read over all collections, changing
 * them admin.write over all collections.
 */
@ApiTags('ticket integrations')
@Controller('v1/ticket-integrations')
@UseGuards(allCollections('admin.read'))
export class TicketIntegrationsController {
  constructor(private readonly integrations: TicketIntegrationsService) {}

  @Get('defaults/:kind')
  @Requires('admin.read')
  @ApiOperation({ summary: 'The mapping rules a new integration of this kind starts with' })
  @ApiReturns(z.object({ kind: z.string(), rules: z.array(z.record(z.string(), z.unknown())) }))
  defaults(@Param(new Zod(kindParam, 'path')) p: z.infer<typeof kindParam>) {
    return { kind: p.kind, rules: defaultRules(p.kind) };
  }

  @Post()
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Create a ticket integration',
    description:
      'The response carries the inbound secret once (generated unless given); outbound credentials are sealed and never returned. Deliveries go to POST /v1/hooks/{id}.',
  })
  @ApiReturns(S.issuedTicketSecret)
  @ApiErrors(422)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createIntegrationSchema)) body: CreateIntegrationInput) {
    return this.integrations.create(caller, body);
  }

  @Get()
  @Requires('admin.read')
  @ApiOperation({ summary: 'List ticket integrations (keyset pagination); secrets are never returned' })
  @ApiReturns(S.pageOf(S.ticketIntegration))
  list(@Query(new Zod(integrationPageQuery, 'query')) q: z.infer<typeof integrationPageQuery>) {
    return this.integrations.list(q);
  }

  @Get(':id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A ticket integration (without its secrets)' })
  @ApiReturns(S.ticketIntegration)
  get(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.integrations.get(p.id);
  }

  @Patch(':id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Change name, rules, outbound URL and credentials, inbound auth, enabled' })
  @ApiReturns(S.ticketIntegration)
  @ApiErrors(422)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updateIntegrationSchema)) body: UpdateIntegrationInput,
  ) {
    return this.integrations.update(caller, p.id, body);
  }

  @Delete(':id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Delete a ticket integration (its delivery log stays)' })
  @ApiReturns(z.object({ deleted: z.literal(true) }))
  remove(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.integrations.delete(caller, p.id);
  }

  @Post(':id/secrets')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Rotate the inbound secret',
    description: 'Adds a new secret (returned once); the previous one stays valid until DELETE …/secrets/previous.',
  })
  @ApiReturns(S.issuedTicketSecret)
  rotate(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(rotateSecretSchema)) body: z.infer<typeof rotateSecretSchema>,
  ) {
    return this.integrations.rotate(caller, p.id, body.inboundSecret);
  }

  @Delete(':id/secrets/previous')
  @Requires('admin.write')
  @ApiOperation({ summary: 'End a rotation: only the newest inbound secret stays valid' })
  @ApiReturns(S.ticketIntegration)
  dropPrevious(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.integrations.dropPrevious(caller, p.id);
  }

  @Post(':id/dry-run')
  @Requires('admin.read')
  @ApiOperation({ summary: 'What the rules would do with a payload (rule, device, viewer, eligibility), storing nothing' })
  @ApiReturns(S.ticketDryRun)
  dryRun(@Param(new Zod(idParam, 'path')) p: { id: string }, @Body(new Zod(dryRunSchema)) body: z.infer<typeof dryRunSchema>) {
    return this.integrations.dryRun(p.id, body.body, body.headers);
  }

  @Get(':id/deliveries')
  @Requires('admin.read')
  @ApiOperation({ summary: 'The delivery log, newest first: signature and dedupe verdicts, rule, device, viewer, session or why not' })
  @ApiReturns(S.pageOf(S.ticketDelivery))
  deliveries(
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Query(new Zod(listDeliveriesQuery, 'query')) q: z.infer<typeof listDeliveriesQuery>,
  ) {
    return this.integrations.deliveries(p.id, q);
  }
}
