// Clerk-shaped payloads and Svix signing, shared by test/node and test/e2e, with
// the shapes of the user.* examples in Clerk's webhook OpenAPI spec.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'svix';

export const rand = (n = 10) => randomBytes(n).toString('hex');
export const newUserId = () => `user_2${rand(13)}`;
export const newMsgId = () => `msg_2${rand(13)}`;

// A full Clerk User. The primary address is deliberately the SECOND entry of email_addresses.
export function clerkUser({ id, email, createdAt, updatedAt = createdAt, firstName = 'Ada', lastName = 'Lovelace',
                            metadata = {} }) {
    const primaryId = `idn_2${rand(13)}`;
    const address = (addressId, emailAddress) => ({
        id: addressId, object: 'email_address', email_address: emailAddress, reserved: false,
        verification: { status: 'verified', strategy: 'email_code', attempts: 1, expire_at: createdAt + 600000 },
        linked_to: [], matches_sso_connection: false, created_at: createdAt, updated_at: createdAt,
    });
    return {
        object: 'user', id, external_id: null,
        primary_email_address_id: primaryId, primary_phone_number_id: null, primary_web3_wallet_id: null,
        username: null, first_name: firstName, last_name: lastName,
        profile_image_url: 'https://img.clerk.com/preview.png', image_url: 'https://img.clerk.com/preview.png',
        has_image: true, public_metadata: metadata, private_metadata: null, unsafe_metadata: {},
        email_addresses: [address(`idn_2${rand(13)}`, `old.${email}`), address(primaryId, email)],
        phone_numbers: [], web3_wallets: [], passkeys: [], password_enabled: true,
        two_factor_enabled: false, totp_enabled: false, backup_code_enabled: false,
        mfa_enabled_at: null, mfa_disabled_at: null, external_accounts: [], saml_accounts: [],
        enterprise_accounts: [], last_sign_in_at: null, banned: false, locked: false,
        lockout_expires_in_seconds: null, verification_attempts_remaining: 100,
        created_at: createdAt, updated_at: updatedAt, delete_self_enabled: true,
        create_organization_enabled: true, create_organizations_limit: null,
        last_active_at: updatedAt, legal_accepted_at: null,
    };
}

// The webhook envelope; timestamp in ms (as Clerk's docs say).
export function clerkEvent(type, data, timestamp = Date.now()) {
    return JSON.stringify({
        data, object: 'event', type, timestamp, instance_id: 'ins_2g7np7Hrk0SN6kj5EDMLDaKNL0S',
        event_attributes: { http_request: { client_ip: '192.0.2.10', user_agent: 'Mozilla/5.0 (test)' } },
    });
}

export const deletedUser = (id) => ({ object: 'user', id, deleted: true, external_id: null });

// The Svix headers of a delivery of `body` with id `id`, signed at `at` by the official package.
// A Svix retry is the same id and body signed again at a later time.
export function svixHeaders(secret, body, { id = newMsgId(), at = new Date() } = {}) {
    return {
        'svix-id': id,
        'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
        'svix-signature': new Webhook(secret).sign(id, at, body),
    };
}

// Fisher-Yates, in place; returns the array.
export function shuffle(items) {
    for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
}
