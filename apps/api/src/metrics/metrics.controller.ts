import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { renderMetrics } from '@rcflow/observability';
import { Public } from '../auth/auth.guard';
import { MetricsGuard } from './metrics.guard';

@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  @Get()
  // Authenticated by MetricsGuard: an API key, or METRICS_TOKEN, which the global guard does not know.
  @Public()
  @UseGuards(MetricsGuard)
  @ApiProduces('text/plain')
  @ApiOperation({
    summary: "This API process' metrics in Prometheus' text format",
    description:
      'Needs an API key with admin.read over all collections, or `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set ' +
      '(for Prometheus). Sessions, refusals, queue depths, outbox lag, connected agents, and the process itself; README "Metrics and logs".',
  })
  async metrics(@Res() res: Response): Promise<void> {
    const { contentType, body } = await renderMetrics();
    res.status(200).type(contentType).send(body);
  }
}
