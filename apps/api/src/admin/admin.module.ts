import { Module } from '@nestjs/common';
import { ApiKeysController } from './api-keys.controller';
import { ClientSettingsController } from './client-settings.controller';
import { CollectionsController } from './collections.controller';
import { DevicesController } from './devices.controller';
import { AdminReads, AdminWrites } from './admin.services';
import { PrincipalsController } from './principals.controller';
import { RoleAssignmentsController } from './role-assignments.controller';

/** The administration API under /v1: devices, collections, client settings, principals, roles, API keys. */
@Module({
  controllers: [
    DevicesController,
    CollectionsController,
    ClientSettingsController,
    PrincipalsController,
    RoleAssignmentsController,
    ApiKeysController,
  ],
  providers: [AdminReads, AdminWrites],
})
export class AdminModule {}
