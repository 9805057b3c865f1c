// GET /api/$metadata: the EDM document describing the entity sets Tourniquet serves.
import type { FastifyInstance } from 'fastify';

const prop = (name: string, type: string, nullable = true) =>
  `<Property Name="${name}" Type="${type}"${nullable ? '' : ' Nullable="false"'}/>`;

const MACHINE_ACTION_PROPS = [
  prop('id', 'Edm.Guid', false),
  prop('type', 'microsoft.windowsDefenderATP.api.MachineActionType', false),
  prop('title', 'Edm.String'),
  prop('requestor', 'Edm.String'),
  prop('requestorComment', 'Edm.String'),
  prop('status', 'microsoft.windowsDefenderATP.api.MachineActionStatus', false),
  prop('machineId', 'Edm.String'),
  prop('computerDnsName', 'Edm.String'),
  prop('creationDateTimeUtc', 'Edm.DateTimeOffset', false),
  prop('lastUpdateDateTimeUtc', 'Edm.DateTimeOffset', false),
  prop('cancellationRequestor', 'Edm.String'),
  prop('cancellationComment', 'Edm.String'),
  prop('cancellationDateTimeUtc', 'Edm.DateTimeOffset'),
  prop('errorHResult', 'Edm.Int32', false),
  prop('scope', 'Edm.String'),
  prop('externalId', 'Edm.String'),
  prop('requestSource', 'Edm.String'),
  prop('relatedFileInfo', 'microsoft.windowsDefenderATP.api.RelatedFileInfo'),
  `<Property Name="commands" Type="Collection(microsoft.windowsDefenderATP.api.LiveResponseCommandStatus)"/>`,
  prop('troubleshootInfo', 'Edm.String'),
];

const MACHINE_PROPS = [
  prop('id', 'Edm.String', false),
  prop('mergedIntoMachineId', 'Edm.String'),
  prop('isPotentialDuplication', 'Edm.Boolean', false),
  prop('isExcluded', 'Edm.Boolean', false),
  prop('exclusionReason', 'Edm.String'),
  prop('computerDnsName', 'Edm.String'),
  prop('firstSeen', 'Edm.DateTimeOffset', false),
  prop('lastSeen', 'Edm.DateTimeOffset', false),
  prop('osPlatform', 'Edm.String'),
  prop('osVersion', 'Edm.String'),
  prop('osProcessor', 'Edm.String'),
  prop('version', 'Edm.String'),
  prop('lastIpAddress', 'Edm.String'),
  prop('lastExternalIpAddress', 'Edm.String'),
  prop('agentVersion', 'Edm.String'),
  prop('osBuild', 'Edm.Int64'),
  prop('healthStatus', 'microsoft.windowsDefenderATP.api.HealthStatus', false),
  prop('deviceValue', 'Edm.String'),
  prop('rbacGroupId', 'Edm.Int64', false),
  prop('rbacGroupName', 'Edm.String'),
  prop('riskScore', 'Edm.String'),
  prop('exposureLevel', 'Edm.String'),
  prop('isAadJoined', 'Edm.Boolean', false),
  prop('aadDeviceId', 'Edm.Guid'),
  `<Property Name="machineTags" Type="Collection(Edm.String)"/>`,
  prop('defenderAvStatus', 'Edm.String'),
  prop('onboardingStatus', 'Edm.String'),
  prop('osArchitecture', 'Edm.String'),
  prop('managedBy', 'Edm.String'),
  prop('managedByStatus', 'Edm.String'),
  `<Property Name="ipAddresses" Type="Collection(microsoft.windowsDefenderATP.api.IpAddress)"/>`,
  prop('vmMetadata', 'microsoft.windowsDefenderATP.api.VmMetadata'),
];

const enumType = (name: string, members: string[]) =>
  `<EnumType Name="${name}">${members.map((m, i) => `<Member Name="${m}" Value="${i}"/>`).join('')}</EnumType>`;

const DOCUMENT =
  '<?xml version="1.0" encoding="utf-8"?>' +
  '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>' +
  '<Schema Namespace="microsoft.windowsDefenderATP.api" xmlns="http://docs.oasis-open.org/odata/ns/edm">' +
  `<EntityType Name="MachineAction"><Key><PropertyRef Name="id"/></Key>${MACHINE_ACTION_PROPS.join('')}</EntityType>` +
  `<EntityType Name="Machine"><Key><PropertyRef Name="id"/></Key>${MACHINE_PROPS.join('')}</EntityType>` +
  '<ComplexType Name="RelatedFileInfo"><Property Name="fileIdentifier" Type="Edm.String"/><Property Name="fileIdentifierType" Type="Edm.String"/></ComplexType>' +
  '<ComplexType Name="IpAddress"><Property Name="ipAddress" Type="Edm.String"/><Property Name="macAddress" Type="Edm.String"/><Property Name="type" Type="Edm.String"/><Property Name="operationalStatus" Type="Edm.String"/></ComplexType>' +
  '<ComplexType Name="VmMetadata"><Property Name="vmId" Type="Edm.String"/><Property Name="cloudProvider" Type="Edm.String"/><Property Name="resourceId" Type="Edm.String"/><Property Name="subscriptionId" Type="Edm.String"/></ComplexType>' +
  '<ComplexType Name="LiveResponseCommandStatus"><Property Name="index" Type="Edm.Int32"/><Property Name="startTime" Type="Edm.DateTimeOffset"/><Property Name="endTime" Type="Edm.DateTimeOffset"/><Property Name="commandStatus" Type="Edm.String"/><Property Name="errors" Type="Collection(Edm.String)"/></ComplexType>' +
  enumType('MachineActionType', ['RunAntiVirusScan', 'Offboard', 'LiveResponse', 'CollectInvestigationPackage', 'Isolate', 'Unisolate', 'StopAndQuarantineFile', 'RestrictCodeExecution', 'UnrestrictCodeExecution']) +
  enumType('MachineActionStatus', ['Pending', 'InProgress', 'Succeeded', 'Failed', 'TimeOut', 'Cancelled']) +
  enumType('HealthStatus', ['Active', 'Inactive', 'ImpairedCommunication', 'NoSensorData', 'NoSensorDataImpairedCommunication', 'Unknown']) +
  '<EntityContainer Name="Container"><EntitySet Name="MachineActions" EntityType="microsoft.windowsDefenderATP.api.MachineAction"/><EntitySet Name="Machines" EntityType="microsoft.windowsDefenderATP.api.Machine"/></EntityContainer>' +
  '</Schema></edmx:DataServices></edmx:Edmx>';

export function registerMetadata(app: FastifyInstance): void {
  app.get('/$metadata', async (_req, reply) =>
    reply.code(200).header('content-type', 'application/xml; charset=utf-8').header('odata-version', '4.0').send(DOCUMENT),
  );
}
