import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { Public } from './auth/auth.guard';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly dataSource: DataSource) {}

  /** Unauthenticated on purpose, for load balancers; it reveals nothing but liveness. */
  @Get()
  @Public()
  @ApiOperation({ summary: 'Liveness and database reachability' })
  async health() {
    await this.dataSource.query('SELECT 1');
    return { status: 'ok' };
  }
}
