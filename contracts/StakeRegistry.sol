// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// The two ERC-20 calls the registry makes.
interface IStakeToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title StakeRegistry: operators' delegated stake, withdrawals and slashes for proofrack.
/// @notice Operators register under the operator id the coordinator knows them by (the
/// `operator` segment of their agents' certificates). Delegators delegate the stake token to
/// an operator; a withdrawal is queued and paid out only after `unbondingDelaySeconds`, which
/// the deployer sets longer than the longest task deadline, so stake bound to a task before a
/// withdrawal request can still be slashed until that task is over. The slasher (the
/// coordinator's key) slashes an operator for a task; a slash id is accepted once only.
///
/// Accounting per operator: an active pool (stake not queued for withdrawal) and a queued pool,
/// each shared by its delegators through shares, so a slash lowers every delegator's position
/// pro rata without a loop. A slash takes from the active pool first, then the queued one.
/// Conservation: delegatedEver = activeStake + queuedStake + withdrawn + slashedTotal.
contract StakeRegistry {
    /// Longest operator name in bytes; the coordinator's `OperatorId` limit.
    uint256 public constant MAX_NAME_BYTES = 64;
    /// Reason codes of a slash.
    uint8 public constant REASON_MISSED_DUE_TIME = 1;
    uint8 public constant REASON_INVALID_PROOF = 2;

    IStakeToken public immutable token;
    address public immutable slasher;
    uint64 public immutable unbondingDelaySeconds;

    struct Operator {
        string name;
        bool registered;
        uint256 activeStake;
        uint256 activeShares;
        uint256 queuedStake;
        uint256 queuedShares;
        uint256 delegatedEver;
        uint256 withdrawn;
        uint256 slashedTotal;
    }

    struct Withdrawal {
        address delegator;
        address operator;
        uint256 queuedShares;
        uint64 readyAt;
        bool completed;
    }

    mapping(address => Operator) private operators;
    /// keccak256(name) => operator address: a name is registered once.
    mapping(bytes32 => address) public operatorByNameHash;
    /// delegator => operator => shares of the operator's active pool.
    mapping(address => mapping(address => uint256)) public sharesOf;
    Withdrawal[] private withdrawals;
    /// Slash ids already applied (see slashIdOf).
    mapping(bytes32 => bool) public isSlashed;

    event OperatorRegistered(address indexed operator, string name);
    event Delegated(address indexed delegator, address indexed operator, uint256 amount, uint256 shares);
    event WithdrawalQueued(
        uint256 indexed id, address indexed delegator, address indexed operator, uint256 amount, uint64 readyAt
    );
    event WithdrawalCompleted(uint256 indexed id, address indexed delegator, address indexed operator, uint256 amount);
    event Slashed(
        address indexed operator,
        bytes32 indexed slashId,
        uint64 taskId,
        uint32 attempt,
        uint8 reason,
        uint256 requested,
        uint256 amount
    );

    constructor(IStakeToken token_, address slasher_, uint64 unbondingDelaySeconds_) {
        require(unbondingDelaySeconds_ > 0, "StakeRegistry: unbonding delay must be positive");
        require(slasher_ != address(0), "StakeRegistry: slasher must be set");
        token = token_;
        slasher = slasher_;
        unbondingDelaySeconds = unbondingDelaySeconds_;
    }

    // ---- operators and delegators ----

    /// The caller becomes the operator the coordinator knows as `name`.
    function registerOperator(string calldata name) external {
        uint256 len = bytes(name).length;
        require(len > 0 && len <= MAX_NAME_BYTES, "StakeRegistry: name must be 1 to 64 bytes");
        require(!operators[msg.sender].registered, "StakeRegistry: caller already registered");
        bytes32 key = keccak256(bytes(name));
        require(operatorByNameHash[key] == address(0), "StakeRegistry: name already taken");
        operatorByNameHash[key] = msg.sender;
        Operator storage op = operators[msg.sender];
        op.name = name;
        op.registered = true;
        emit OperatorRegistered(msg.sender, name);
    }

    /// Delegates `amount` of the stake token (approved to this contract) to `operator`.
    function delegate(address operator, uint256 amount) external {
        Operator storage op = operators[operator];
        require(op.registered, "StakeRegistry: operator not registered");
        require(amount > 0, "StakeRegistry: delegate a positive amount");
        uint256 shares;
        if (op.activeShares == 0) {
            shares = amount;
        } else {
            require(op.activeStake > 0, "StakeRegistry: operator's active stake fully slashed");
            shares = amount * op.activeShares / op.activeStake;
        }
        require(shares > 0, "StakeRegistry: amount too small for one share");
        require(token.transferFrom(msg.sender, address(this), amount), "StakeRegistry: transfer failed");
        op.activeStake += amount;
        op.activeShares += shares;
        op.delegatedEver += amount;
        sharesOf[msg.sender][operator] += shares;
        emit Delegated(msg.sender, operator, amount, shares);
    }

    /// Queues a withdrawal of `amount` of the caller's stake with `operator`; it stays
    /// slashable until completed, after the unbonding delay.
    function requestWithdrawal(address operator, uint256 amount) external returns (uint256 id) {
        Operator storage op = operators[operator];
        require(amount > 0 && amount <= op.activeStake, "StakeRegistry: amount above the operator's active stake");
        uint256 shares = (amount * op.activeShares + op.activeStake - 1) / op.activeStake;
        require(shares <= sharesOf[msg.sender][operator], "StakeRegistry: amount above the caller's delegation");
        sharesOf[msg.sender][operator] -= shares;
        op.activeShares -= shares;
        op.activeStake -= amount;
        uint256 queued;
        if (op.queuedShares == 0) {
            queued = amount;
        } else {
            require(op.queuedStake > 0, "StakeRegistry: queued stake fully slashed; wait for it to clear");
            queued = amount * op.queuedShares / op.queuedStake;
        }
        require(queued > 0, "StakeRegistry: amount too small for one share");
        op.queuedStake += amount;
        op.queuedShares += queued;
        uint64 readyAt = uint64(block.timestamp) + unbondingDelaySeconds;
        id = withdrawals.length;
        withdrawals.push(Withdrawal(msg.sender, operator, queued, readyAt, false));
        emit WithdrawalQueued(id, msg.sender, operator, amount, readyAt);
    }

    /// Pays out withdrawal `id` to its delegator once its unbonding delay has passed.
    function completeWithdrawal(uint256 id) external {
        require(id < withdrawals.length, "StakeRegistry: no such withdrawal");
        Withdrawal storage w = withdrawals[id];
        require(w.delegator == msg.sender, "StakeRegistry: not the caller's withdrawal");
        require(!w.completed, "StakeRegistry: withdrawal already completed");
        require(block.timestamp >= w.readyAt, "StakeRegistry: unbonding delay not over");
        Operator storage op = operators[w.operator];
        uint256 amount = w.queuedShares * op.queuedStake / op.queuedShares;
        w.completed = true;
        op.queuedShares -= w.queuedShares;
        op.queuedStake -= amount;
        op.withdrawn += amount;
        require(token.transfer(msg.sender, amount), "StakeRegistry: transfer failed");
        emit WithdrawalCompleted(id, msg.sender, w.operator, amount);
    }

    // ---- slashing ----

    /// The id a slash of `operator` for attempt `attempt` of task `taskId` is accepted under.
    function slashIdOf(address operator, uint64 taskId, uint32 attempt) public pure returns (bytes32) {
        return keccak256(abi.encode(operator, taskId, attempt));
    }

    /// Takes up to `amount` of `operator`'s stake (active pool first, then queued) to the
    /// slasher. Reverts if this slash id was applied before.
    function slash(address operator, uint64 taskId, uint32 attempt, uint8 reason, uint256 amount) external {
        require(msg.sender == slasher, "StakeRegistry: only the slasher slashes");
        require(operators[operator].registered, "StakeRegistry: operator not registered");
        bytes32 id = slashIdOf(operator, taskId, attempt);
        require(!isSlashed[id], "StakeRegistry: slash already applied");
        isSlashed[id] = true;
        Operator storage op = operators[operator];
        uint256 fromActive = amount <= op.activeStake ? amount : op.activeStake;
        uint256 rest = amount - fromActive;
        uint256 fromQueued = rest <= op.queuedStake ? rest : op.queuedStake;
        op.activeStake -= fromActive;
        op.queuedStake -= fromQueued;
        uint256 taken = fromActive + fromQueued;
        op.slashedTotal += taken;
        if (taken > 0) {
            require(token.transfer(slasher, taken), "StakeRegistry: transfer failed");
        }
        emit Slashed(operator, id, taskId, attempt, reason, amount, taken);
    }

    // ---- views ----

    /// An operator's stake in the coordinator ledger's terms: `delegated` includes stake
    /// queued for withdrawal (`withdrawing`) until it is paid out.
    function operatorStake(address operator)
        external
        view
        returns (uint256 delegated, uint256 withdrawing, uint256 delegatedEver, uint256 withdrawn, uint256 slashedTotal)
    {
        Operator storage op = operators[operator];
        return (op.activeStake + op.queuedStake, op.queuedStake, op.delegatedEver, op.withdrawn, op.slashedTotal);
    }

    function operatorName(address operator) external view returns (string memory) {
        return operators[operator].name;
    }

    function withdrawalCount() external view returns (uint256) {
        return withdrawals.length;
    }

    function withdrawal(uint256 id)
        external
        view
        returns (address delegator, address operator, uint256 queuedShares, uint64 readyAt, bool completed)
    {
        Withdrawal storage w = withdrawals[id];
        return (w.delegator, w.operator, w.queuedShares, w.readyAt, w.completed);
    }
}
