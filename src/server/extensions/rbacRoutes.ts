// /tourniquet/v1: users, roles, role assignments and device groups (docs/rbac.md). Reading needs the application
// role Tourniquet.Rbac.Read or .Manage; changing needs Tourniquet.Rbac.Manage. A user needs the matching delegated
// scope and a role with "Manage security settings" (on all device groups: managing RBAC is tenant-wide). Every
// change is audited with who made it; a refused change is audited as a failure.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MdeError, notFound } from '../../core/errors.ts';
import { parseJsonObject } from '../../core/validation.ts';
import { RbacConflictError } from '../../store/rbacErrors.ts';
import type { AssigneeKind, RoleRecord } from '../../store/store.ts';
import { auditActor } from '../audit.ts';
import type { ServerContext } from '../context.ts';
import { authorize, rbacChanged } from '../mde/access.ts';
import { sendOData } from '../mde/wire.ts';
import { assignmentView, deviceGroupView, RbacAdmin, RbacInputError, roleView, userView } from './rbacAdmin.ts';

function body(req: FastifyRequest): Record<string, unknown> {
  return parseJsonObject(typeof req.body === 'string' ? req.body : '');
}

function send(reply: FastifyReply, status: number, value: unknown): FastifyReply {
  return sendOData(reply, status, JSON.stringify(value));
}

function noContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).header('content-length', '0').send();
}

/** Store and input refusals in the API's error envelope. */
function asApiError(err: unknown): unknown {
  if (err instanceof RbacInputError) return new MdeError(400, 'InvalidInput', err.message);
  if (err instanceof RbacConflictError) return new MdeError(400, err.kind === 'missingReference' ? 'InvalidInput' : 'BadRequest', err.message);
  return err;
}

export function registerRbacRoutes(app: FastifyInstance, ctx: ServerContext): void {
  /** Authorizes and runs a change; a refused one is audited here (successful ones are audited by RbacAdmin). */
  const change = (action: string, handler: (admin: RbacAdmin, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        const access = await authorize(ctx, req, 'manageRbac');
        if (access.visibility !== undefined) {
          throw new MdeError(403, 'Forbidden', 'Managing roles and device groups requires "Manage security settings" on all device groups.');
        }
        const admin = new RbacAdmin({ store: ctx.store, actor: auditActor(req, access.principal), onChange: () => rbacChanged(ctx) });
        return await handler(admin, req, reply);
      } catch (err) {
        const apiErr = asApiError(err);
        // Refusals, permission refusals included, are part of the record of who tried to change access.
        await ctx.audit({
          ...auditActor(req, req.principal),
          action,
          target: (req.params as { id?: string }).id ?? null,
          result: 'failure',
          status: apiErr instanceof MdeError ? apiErr.status : 500,
          detail: { error: apiErr instanceof MdeError ? apiErr.message : 'InternalServerError' },
        });
        throw apiErr;
      }
    };

  const read = (handler: (admin: RbacAdmin, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      const access = await authorize(ctx, req, 'readRbac');
      if (access.visibility !== undefined) {
        throw new MdeError(403, 'Forbidden', 'Reading roles and device groups requires "Manage security settings" on all device groups.');
      }
      const admin = new RbacAdmin({ store: ctx.store, actor: auditActor(req, access.principal) });
      try {
        return await handler(admin, req, reply);
      } catch (err) {
        throw asApiError(err);
      }
    };

  const idOf = (req: FastifyRequest): string => (req.params as { id: string }).id;
  const rolesById = async (admin: RbacAdmin): Promise<Map<string, RoleRecord>> =>
    new Map((await admin.listRoles()).map((r) => [r.id, r]));

  // users
  app.get('/users', read(async (admin, _req, reply) => send(reply, 200, { value: await admin.listUsers() })));
  app.get('/users/:id', read(async (admin, req, reply) => {
    const u = await admin.findUser(idOf(req));
    if (!u) throw notFound(`User ${idOf(req)} was not found`);
    const roles = await rolesById(admin);
    const assignments = (await admin.listAssignments({ assigneeKind: 'user', assignee: u.oid })).map((a) => assignmentView(a, roles));
    return send(reply, 200, { ...userView(u), roleAssignments: assignments });
  }));
  app.post('/users', change('user.create', async (admin, req, reply) => {
    const created = await admin.createUser(body(req));
    const roles = await rolesById(admin);
    return send(reply, 201, { ...created.user, roleAssignments: created.assignments.map((a) => assignmentView(a, roles)) });
  }));
  app.patch('/users/:id', change('user.update', async (admin, req, reply) => {
    const u = await admin.updateUser(idOf(req), body(req));
    if (!u) throw notFound(`User ${idOf(req)} was not found`);
    return send(reply, 200, u);
  }));
  app.delete('/users/:id', change('user.delete', async (admin, req, reply) => {
    if (!(await admin.deleteUser(idOf(req)))) throw notFound(`User ${idOf(req)} was not found`);
    return noContent(reply);
  }));

  // roles
  app.get('/roles', read(async (admin, _req, reply) => send(reply, 200, { value: (await admin.listRoles()).map(roleView) })));
  app.get('/roles/:id', read(async (admin, req, reply) => {
    const r = await admin.findRole(idOf(req));
    if (!r) throw notFound(`Role ${idOf(req)} was not found`);
    return send(reply, 200, roleView(r));
  }));
  app.post('/roles', change('role.create', async (admin, req, reply) => send(reply, 201, roleView(await admin.createRole(body(req))))));
  app.patch('/roles/:id', change('role.update', async (admin, req, reply) => {
    const r = await admin.updateRole(idOf(req), body(req));
    if (!r) throw notFound(`Role ${idOf(req)} was not found`);
    return send(reply, 200, roleView(r));
  }));
  app.delete('/roles/:id', change('role.delete', async (admin, req, reply) => {
    if (!(await admin.deleteRole(idOf(req)))) throw notFound(`Role ${idOf(req)} was not found`);
    return noContent(reply);
  }));

  // role assignments
  app.get('/role-assignments', read(async (admin, req, reply) => {
    const q = req.query as Record<string, unknown>;
    const filter: { assigneeKind?: AssigneeKind; assignee?: string; roleId?: string } = {};
    if (q.assigneeKind !== undefined) {
      if (!['user', 'group', 'upn'].includes(String(q.assigneeKind))) throw new MdeError(400, 'InvalidInput', 'Invalid input assigneeKind');
      filter.assigneeKind = String(q.assigneeKind) as AssigneeKind;
    }
    if (q.assignee !== undefined) filter.assignee = String(q.assignee);
    if (q.roleId !== undefined) filter.roleId = String(q.roleId);
    const roles = await rolesById(admin);
    return send(reply, 200, { value: (await admin.listAssignments(filter)).map((a) => assignmentView(a, roles)) });
  }));
  app.get('/role-assignments/:id', read(async (admin, req, reply) => {
    const a = await admin.getAssignment(idOf(req));
    if (!a) throw notFound(`Role assignment ${idOf(req)} was not found`);
    return send(reply, 200, assignmentView(a, await rolesById(admin)));
  }));
  app.post('/role-assignments', change('roleAssignment.upsert', async (admin, req, reply) => {
    const a = await admin.assignRole(body(req));
    return send(reply, 201, assignmentView(a, await rolesById(admin)));
  }));
  app.delete('/role-assignments/:id', change('roleAssignment.delete', async (admin, req, reply) => {
    if (!(await admin.unassign(idOf(req)))) throw notFound(`Role assignment ${idOf(req)} was not found`);
    return noContent(reply);
  }));

  // device groups
  app.get('/device-groups', read(async (admin, _req, reply) =>
    send(reply, 200, { value: (await admin.listDeviceGroups()).map(deviceGroupView) })));
  app.get('/device-groups/:id', read(async (admin, req, reply) => {
    const g = await admin.findDeviceGroup(idOf(req));
    if (!g) throw notFound(`Device group ${idOf(req)} was not found`);
    return send(reply, 200, deviceGroupView(g));
  }));
  app.post('/device-groups', change('deviceGroup.create', async (admin, req, reply) => {
    const r = await admin.createDeviceGroup(body(req));
    return send(reply, 201, { ...deviceGroupView(r.group), machinesMoved: r.moved });
  }));
  app.patch('/device-groups/:id', change('deviceGroup.update', async (admin, req, reply) => {
    const r = await admin.updateDeviceGroup(idOf(req), body(req));
    if (!r) throw notFound(`Device group ${idOf(req)} was not found`);
    return send(reply, 200, { ...deviceGroupView(r.group), machinesMoved: r.moved });
  }));
  app.delete('/device-groups/:id', change('deviceGroup.delete', async (admin, req, reply) => {
    const r = await admin.deleteDeviceGroup(idOf(req));
    if (!r) throw notFound(`Device group ${idOf(req)} was not found`);
    return send(reply, 200, { machinesMoved: r.moved });
  }));
}
